import type { ServiceIdentifier } from 'inversify';

/**
 * Where in a session a fault may be injected (`starttls` also covers the handshake of an implicit-TLS listener, where
 * only `tls-abort` applies). `connect` and `greeting` come before the greeting (a reply there
 * replaces the greeting and the session ends); `starttls` is the TLS command (STARTTLS/STLS); `auth` is SMTP AUTH;
 * `mail`, `rcpt` are SMTP MAIL FROM / RCPT TO; `data` is the end of an SMTP body (DATA's dot or BDAT LAST), before
 * the message is stored; `login` is POP3 USER/PASS/APOP/AUTH and IMAP LOGIN/AUTHENTICATE; `fetch` is POP3
 * RETR/TOP and IMAP FETCH/UID FETCH.
 */
export type FaultStage = 'connect' | 'greeting' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'login' | 'fetch';

/** Every {@link FaultStage}, for validation and documentation. */
export const FAULT_STAGES: readonly FaultStage[] = ['connect', 'greeting', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'login', 'fetch'];

/** What to do at a stage. */
export type FaultAction =
  /** Send this line instead of running the command (`451 4.3.0 …`, `-ERR …`, `NO …`); an SMTP `421` also closes. */
  | { readonly kind: 'reply'; readonly text: string }
  /** Wait, then go on as usual. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Drop the connection without a word. */
  | { readonly kind: 'disconnect' }
  /** At `starttls`: send the go-ahead, then abort the TLS handshake (the connection is dropped mid-handshake). */
  | { readonly kind: 'tls-abort' }
  /** From now on, write to this client at most this many octets per second. */
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number };

/**
 * Decides faults for sessions (the test double's "chaos"). Consulted by every text session at each
 * {@link FaultStage}; returns undefined to go on normally. Must be fast and must not throw.
 */
export interface FaultInjector {
  /**
   * @param protocol `smtp`, `pop3` or `imap` (the listener name without its trailing `s`).
   * @param subjects what an address pattern is matched against: the MAIL/RCPT address, the login name, the
   *   recipients of a body; empty when the stage has none.
   * @param applies when given, only actions it accepts are considered (a rule it refuses neither fires nor counts).
   */
  decide(protocol: string, stage: FaultStage, subjects: readonly string[], applies?: (action: FaultAction) => boolean): FaultAction | undefined;
}
/** DI token of the {@link FaultInjector} (optional: without a binding no fault is ever injected). */
export const FaultInjector = Symbol.for('postern.FaultInjector') as ServiceIdentifier<FaultInjector>;
