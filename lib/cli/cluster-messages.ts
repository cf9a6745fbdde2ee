/**
 * The IPC protocol of `postern --workers N`: every message between the primary (`cluster-primary.ts`) and its workers
 * (`cluster-worker.ts`), and the checks applied to what arrives (IPC input is checked, not trusted).
 */
import type { ReadyListener } from '../di/mail-server.js';
import type { AuthThrottleEvent } from '../protocol/auth-throttle.js';

/** Primary → worker: what every worker must share (sent in answer to `hello`). */
export interface InitMessage {
  readonly postern: 'init';
  /** The certificate the primary generated when none is configured, so every worker serves the same one. */
  readonly certificate?: { readonly cert: string; readonly key: string };
  /** Current session-ticket keys, base64 (absent when tickets are off). */
  readonly ticketKeys?: string;
  /** With ACME: the TLS-ALPN-01 validations pending now, which a worker (re)started mid-order must answer too. */
  readonly challenges?: readonly AcmeChallenge[];
  /** With ACME: the HTTP-01 validations pending now, `[token, keyAuthorization]`. */
  readonly httpChallenges?: ReadonlyArray<readonly [string, string]>;
  /** The fault-injection rules last set at run time through any worker (absent: the `--chaos` ones still hold). */
  readonly chaos?: unknown;
}
/**
 * Worker → primary → every other worker: the fault-injection rules were replaced (`PUT`/`DELETE /api/v1/chaos` on one
 * worker), so every worker applies the same rules. Counts (`times`, `fired`) and random draws stay per worker.
 */
export interface ChaosMessage {
  readonly postern: 'chaos';
  readonly config: unknown;
}
/** One pending TLS-ALPN-01 validation (RFC 8737): the domain and its challenge key and certificate (PEM). */
export interface AcmeChallenge {
  readonly domain: string;
  readonly key: string;
  readonly cert: string;
}
/**
 * Primary → worker (ACME): answer this TLS-ALPN-01 validation (`challenge`), or stop answering `domain`'s
 * (`challenge` absent). The worker answers with {@link AppliedMessage}.
 */
export interface AcmeChallengeMessage {
  readonly postern: 'acme-challenge';
  readonly id: number;
  readonly domain: string;
  readonly challenge?: AcmeChallenge;
}
/** Primary → worker (ACME): answer this HTTP-01 token (`keyAuthorization`), or stop answering it (absent). */
export interface AcmeHttpMessage {
  readonly postern: 'acme-http';
  readonly id: number;
  readonly token: string;
  readonly keyAuthorization?: string;
}
/** Primary → worker (ACME): serve this certificate (PEM, chain included) from the next handshake on. */
export interface CertificateMessage {
  readonly postern: 'certificate';
  readonly id: number;
  readonly cert: string;
  readonly key: string;
}
/** Worker → primary: message `id` is in effect in this worker (`error` when it could not be applied). */
export interface AppliedMessage {
  readonly postern: 'applied';
  readonly id: number;
  readonly error?: string;
}
/** Worker → primary: send me the whole cluster's metrics (for the HTTP listener's `/metrics`). */
export interface MetricsRequestMessage {
  readonly postern: 'metrics-request';
  readonly id: number;
}
/** Primary → worker: the answer to {@link MetricsRequestMessage}: Prometheus text, or why there is none. */
export interface MetricsMessage {
  readonly postern: 'metrics';
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}
/** Primary → worker: new session-ticket keys (base64). */
export interface TicketKeysMessage {
  readonly postern: 'ticket-keys';
  readonly ticketKeys: string;
}
/** Primary → worker: drain and exit, as on SIGTERM. */
export interface StopMessage {
  readonly postern: 'stop';
}
/** Worker → primary: ask for {@link InitMessage}. */
export interface HelloMessage {
  readonly postern: 'hello';
}
/** Worker → primary: every listener of this worker is listening. */
export interface ReadyMessage {
  readonly postern: 'ready';
  readonly pid: number;
  readonly listeners: readonly ReadyListener[];
}
/** Worker → primary: start-up failed for this reason (the worker exits 2 without printing it). */
export interface FailedMessage {
  readonly postern: 'failed';
  readonly message: string;
}
/**
 * Worker → primary → every other worker: a failed or successful login, so the failed-login limits count the whole
 * cluster's attempts (an attacker spread over N workers gets no more guesses than against one process).
 */
export interface AuthEventMessage {
  readonly postern: 'auth';
  readonly event: AuthThrottleEvent;
}
/** Any message of the protocol. */
export type ClusterMessage =
  | InitMessage
  | TicketKeysMessage
  | StopMessage
  | HelloMessage
  | ReadyMessage
  | FailedMessage
  | AuthEventMessage
  | AcmeChallengeMessage
  | AcmeHttpMessage
  | CertificateMessage
  | AppliedMessage
  | MetricsRequestMessage
  | MetricsMessage
  | ChaosMessage;

/** True for a well-formed {@link AuthThrottleEvent} (IPC input is checked, not trusted). */
export function isAuthEvent(e: unknown): e is AuthThrottleEvent {
  const v = e as Partial<AuthThrottleEvent> | null;
  return typeof v === 'object' && v !== null && (v.kind === 'failure' || v.kind === 'success') && typeof v.address === 'string' && typeof v.account === 'string';
}

/** True for our IPC messages (Node's own cluster traffic and foreign messages are ignored). */
export function isClusterMessage(m: unknown): m is ClusterMessage {
  return typeof m === 'object' && m !== null && typeof (m as { postern?: unknown }).postern === 'string';
}
