/**
 * What a protocol session reports to metrics. The protocol layer knows only this interface; `PosternMetrics`
 * (lib/metrics) implements it with prom-client. Every method is cheap and never throws.
 */
export interface SessionMetrics {
  /** One command dispatched (`protocol` is `smtp`, `pop3` or `imap`; `command` a known verb), with its duration. */
  command(protocol: string, command: string, seconds: number): void;
  /** One login attempt and how it ended (`throttled`: refused by the AuthThrottle before any check). */
  auth(protocol: string, mechanism: string, result: 'success' | 'failure' | 'throttled'): void;
  /** One message (SMTP DATA/BDAT) accepted with `250` or refused, with its size in octets. */
  message(result: 'accepted' | 'refused', octets: number): void;
}
