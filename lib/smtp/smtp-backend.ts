import type { Readable } from 'node:stream';
import type { ServiceIdentifier } from 'inversify';
import type { PeerInfo } from '../contracts/peer-info.js';
import type { MessageChange } from './message-editor.js';
import type { MessageHeader } from './message-header.js';

/** Parameters of MAIL FROM that the server understood (RFC 1870, RFC 6152, RFC 6531, RFC 4954 §5). */
export interface MailParams {
  /** Declared message size (`SIZE=`), if given. */
  readonly size?: number;
  /** `BODY=` (RFC 6152): `7BIT` or `8BITMIME`. */
  readonly body?: '7BIT' | '8BITMIME';
  /** `SMTPUTF8` was given (RFC 6531 §3.4): addresses and headers may carry UTF-8. */
  readonly smtpUtf8: boolean;
  /** `AUTH=` (RFC 4954 §5), xtext-decoded; `<>` when the client does not vouch for the sender. */
  readonly auth?: string;
  /** DSN (RFC 3461 §4.3, with `smtp.dsn`): `RET=`, how much of the message a failure notice should return. */
  readonly ret?: 'FULL' | 'HDRS';
  /** DSN (RFC 3461 §4.4, with `smtp.dsn`): `ENVID=`, xtext-decoded, to be quoted in every notice. */
  readonly envid?: string;
  /**
   * `REQUIRETLS` (RFC 8689 §4.1) was given: the sender requires TLS on every hop of this message. Accepted only on a
   * TLS session (the keyword is offered only there).
   */
  readonly requireTls?: true;
}

/** A `NOTIFY` keyword (RFC 3461 §4.1); `NEVER` comes alone. */
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/**
 * Parameters of RCPT TO: the DSN requests (RFC 3461 §4.1, §4.2) when `smtp.dsn` is on; any other parameter (and these
 * without `smtp.dsn`) is refused with 555 before hooks and backend run.
 */
export interface RcptParams {
  /** `NOTIFY=`: when to send a notice for this recipient, upper-case, in the client's order; `['NEVER']` for never. */
  readonly notify?: readonly DsnNotify[];
  /** `ORCPT=`: the original recipient, e.g. `{ addressType: 'rfc822', address: 'alice@example.com' }` (xtext-decoded). */
  readonly orcpt?: { readonly addressType: string; readonly address: string };
}

/** The transaction a body belongs to. */
export interface Envelope {
  /** Reverse-path without angle brackets; `''` for the null path `<>`. */
  readonly mailFrom: string;
  readonly mailParams: MailParams;
  /** Forward-paths in the order accepted (duplicates kept as the client sent them). */
  readonly rcptTo: readonly string[];
  /**
   * The RCPT TO parameters of each forward-path, in the same order as {@link rcptTo}; present only when a client gave
   * any (DSN's `NOTIFY`/`ORCPT` with `smtp.dsn`), with `{}` for the recipients that gave none.
   */
  readonly rcptParams?: readonly RcptParams[];
  /** The EHLO/HELO argument. */
  readonly helo: string;
  /** The authenticated user (canonical name from the Authenticator), if any. */
  readonly user?: string;
  /** RFC 3848 `with` keyword: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA` or `ESMTPSA`; `UTF8SMTP…` with SMTPUTF8 (RFC 6531 §3.7.3). */
  readonly protocol: string;
  readonly peer: PeerInfo;
}

/** What a backend or hook may know about the session at any time (live values). */
export interface SmtpContext {
  /** The peer, with the current TLS facts. */
  readonly peer: PeerInfo;
  /** The EHLO/HELO argument, once given. */
  readonly helo?: string;
  /** The authenticated user, once AUTH succeeded. */
  readonly user?: string;
  /** This server's name (greeting, Received header). */
  readonly hostname: string;
}

/**
 * Business side of one SMTP connection. Parsing, state and replies stay in the session; throw
 * `SmtpReplyError(code, enhanced, text)` from any method to refuse with a chosen reply (the state is unchanged).
 */
export interface SmtpSession {
  /**
   * Reverse-path already parsed (`''` for `<>`) with its parameters. Return a promise (an `async` method) or, when
   * the decision needs no I/O, nothing: the server then answers without a promise or microtask (issue 15).
   */
  mailFrom(from: string, params: MailParams): void | Promise<void>;
  /** One forward-path already parsed; like {@link mailFrom}, returns a promise or, decided synchronously, nothing. */
  rcptTo(to: string, params: RcptParams): void | Promise<void>;
  /**
   * The message: dot-unstuffed (DATA) or concatenated chunks (BDAT), size-limited, with the server's `Received:`
   * header first. Resolve only after the message is stored: the client gets 250 then, and we own the message
   * (RFC 5321 §6.1). If the stream errors (client vanished, size exceeded, bare LF, a hook refused) store
   * nothing and reject.
   */
  data(body: Readable, envelope: Envelope): Promise<void>;
  /**
   * Optional, instead of {@link data} for a backend that keeps the whole message anyway (issue 15: no stream per
   * message). When present and no `onHeader` or `onData` hook is bound, the server collects the message itself and
   * calls this once the body is complete and within limits: `chunks` in order are the message exactly as `data`'s
   * stream would carry it (dot-unstuffed, `Received:` header first), `size` their total length. The chunks are the
   * backend's to keep. Never called for a refused or abandoned message. Resolve only after the message is stored;
   * reject (an `SmtpReplyError` to choose the reply) to refuse it.
   */
  dataChunks?(chunks: readonly Buffer[], size: number, envelope: Envelope): Promise<void>;
  /** The transaction is over or abandoned: RSET, a new EHLO/HELO, after DATA/BDAT LAST. */
  reset(): void;
  /** Called exactly once, when the connection ends or before a fresh session after STARTTLS. */
  close(): Promise<void>;
}

/**
 * Opens the business sessions. Bound to {@link SmtpBackend}; the default delivers to the `MailStore`
 * (`MailStoreSmtpBackend`). Rebind it to relay, queue or inspect mail.
 */
export interface SmtpBackend {
  /** Called after the greeting is decided and again after STARTTLS (the old session is closed first). */
  openSession(context: SmtpContext): Promise<SmtpSession>;
}
/** DI token of {@link SmtpBackend}. */
export const SmtpBackend = Symbol.for('postern.SmtpBackend') as ServiceIdentifier<SmtpBackend>;

/** What `onAuth` learns about a successful authentication. */
export interface SmtpAuthInfo {
  /** Canonical user from the Authenticator. */
  readonly username: string;
  /** `PLAIN`, `LOGIN` or `CRAM-MD5`. */
  readonly mechanism: string;
  readonly peer: PeerInfo;
}

/**
 * Policy hooks for people building on the server. Bind any number to {@link SmtpHooks} (multi-binding; the
 * server resolves them all and calls them in binding order). Every method is optional and async; throw
 * `SmtpReplyError(code, enhanced, text)` to refuse. A hook that throws anything else is a bug: it is logged and
 * the client gets `451 4.3.0`; it is never skipped silently.
 */
export interface SmtpHooks {
  /** Before the greeting (after the handshake on the implicit-TLS port). A refusal is sent instead of the greeting and the connection closes. */
  onConnect?(peer: PeerInfo): Promise<void>;
  /**
   * After each successful TLS handshake (implicit or STARTTLS), with `peer.security` holding the protocol, cipher,
   * client certificate and policy errors. A refusal is sent over TLS and the connection closes.
   */
  onSecure?(peer: PeerInfo): Promise<void>;
  /** After the Authenticator accepted the credentials; a refusal replaces the 235 and the session stays unauthenticated. */
  onAuth?(info: SmtpAuthInfo): Promise<void>;
  /** Before the backend sees MAIL FROM. */
  onMailFrom?(from: string, params: MailParams, context: SmtpContext): Promise<void>;
  /** Before the backend sees each RCPT TO. */
  onRcptTo?(to: string, params: RcptParams, context: SmtpContext): Promise<void>;
  /**
   * Changes the message before it is stored. Called once per message (DATA, BDAT, LMTP alike) as soon as its header
   * block has arrived, before any octet reaches `onData` or the backend, with the parsed header (the server's
   * `Received:` field first). Edit `header` in place (`add`, `prepend`, `set`, `remove`); later hooks see earlier
   * hooks' edits. Return a {@link MessageChange} to pipe the body through a stream (`body`) or to read the whole
   * body before the header is written (`scan`, e.g. to add `X-Spam-Score`; the body is then held in memory).
   * Without `scan`, only the header block is held: the body streams through. Fields no hook touched keep their
   * exact octets. The edited message is held to `maxMessageSize` (`552 5.3.4`). A refusal (here, in `scan`, or a
   * body stream destroyed with an `SmtpReplyError`) means nothing is stored and the client gets that reply.
   */
  onHeader?(header: MessageHeader, envelope: Envelope): Promise<MessageChange | void>;
  /**
   * Reads the message as a stream, alongside the backend, as it will be stored (after the `onHeader` edits). The
   * backend's stream does not end until every `onData` has resolved, so a refusal here means nothing is stored. A
   * hook that resolves without reading simply stops receiving chunks. It cannot change the message: use
   * `onHeader` for that.
   */
  onData?(body: Readable, envelope: Envelope): Promise<void>;
}
/** DI token of the {@link SmtpHooks} multi-binding. */
export const SmtpHooks = Symbol.for('postern.SmtpHooks') as ServiceIdentifier<SmtpHooks>;

/**
 * Where an {@link LmtpDataSession} reports the outcome for each recipient (go-smtp's `StatusCollector`).
 * `error` undefined means delivered; an `SmtpReplyError` is answered as it is; anything else is a bug (logged,
 * answered `451 4.3.0`). A status for an address applies to every RCPT TO of that address (case-insensitive).
 */
export interface RecipientStatus {
  set(rcpt: string, error?: unknown): void;
}

/**
 * Optional add-on of an {@link SmtpSession} for LMTP (RFC 2033 §4.2): deliver the message and report one outcome per
 * recipient, so that one full mailbox does not bounce the message for the others. A recipient left without a status
 * gets the method's own outcome (delivered when it resolves, its error when it rejects). Sessions without it are
 * served by `data`, whose single outcome then applies to every recipient. Detect it with {@link supportsLmtpData}.
 */
export interface LmtpDataSession {
  lmtpData(body: Readable, envelope: Envelope, status: RecipientStatus): Promise<void>;
}

/** True when the session reports per-recipient outcomes ({@link LmtpDataSession}). */
export function supportsLmtpData(session: SmtpSession): session is SmtpSession & LmtpDataSession {
  return typeof (session as Partial<LmtpDataSession>).lmtpData === 'function';
}
