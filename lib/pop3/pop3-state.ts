/**
 * The POP3 session states, named as RFC 1939 §3 names them:
 * - `authorization`: greeting sent, the client has not identified itself yet (USER/PASS, APOP, AUTH, STLS, CAPA);
 * - `transaction`: the maildrop is locked and snapshotted (STAT, LIST, RETR, DELE…);
 * - `update`: QUIT was received in `transaction`; deletions are being applied, then the connection closes.
 *
 * A connection that ends any other way (drop, idle timeout, shutdown) never enters `update`, so it deletes nothing.
 */
export type Pop3State = 'authorization' | 'transaction' | 'update';
