/**
 * Base of every protocol's "refuse with this reply" error (`SmtpReplyError`, `Pop3Error`, `ImapError`).
 *
 * Thrown by handlers, hooks and backends; `dispatch()` sends it as-is, counts nothing against the error
 * budget, and leaves the session state unchanged.
 */
export abstract class ReplyError extends Error {
  override name = 'ReplyError';
}

/**
 * A client syntax or sequence error found inside a handler (bad argument shape, bad base64…). `dispatch()`
 * answers it through the protocol's syntax reply and counts it against the error budget.
 */
export class ProtocolSyntaxError extends Error {
  override readonly name = 'ProtocolSyntaxError';
}
