import type { MailParams, RcptParams } from '../smtp-backend.js';
import type { SmtpConnection, Transaction } from '../smtp-connection.js';
import { decodeXtext, isNonAscii, parsePath } from '../smtp-address.js';
import { REPLIES, reply, SmtpReplyError } from '../smtp-replies.js';

/** RFC 6531 §3.5: a non-ASCII address needs the SMTPUTF8 parameter on MAIL. */
const NEEDS_SMTPUTF8 = (): SmtpReplyError => new SmtpReplyError(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8');

function mailParams(raw: ReadonlyMap<string, string | true>, maxSize: number): MailParams {
  let size: number | undefined;
  let body: MailParams['body'];
  let smtpUtf8 = false;
  let auth: string | undefined;
  for (const [key, value] of raw) {
    switch (key) {
      case 'SIZE':
        // RFC 1870 §3: SIZE=<digits>; refuse early when it cannot fit (552 5.3.4, §6.2).
        if (value === true || !/^\d{1,20}$/.test(value)) throw new SmtpReplyError(501, '5.5.4', 'Bad SIZE value', true);
        size = Number(value);
        if (maxSize > 0 && size > maxSize) throw new SmtpReplyError(552, '5.3.4', `Message size exceeds fixed maximum message size (${maxSize})`);
        break;
      case 'BODY': {
        // RFC 6152 §2: BODY=7BIT / BODY=8BITMIME.
        const v = value === true ? '' : value.toUpperCase();
        if (v !== '7BIT' && v !== '8BITMIME') throw new SmtpReplyError(501, '5.5.4', 'BODY must be 7BIT or 8BITMIME', true);
        body = v;
        break;
      }
      case 'SMTPUTF8':
        // RFC 6531 §3.4: no value.
        if (value !== true) throw new SmtpReplyError(501, '5.5.4', 'SMTPUTF8 takes no value', true);
        smtpUtf8 = true;
        break;
      case 'AUTH':
        // RFC 4954 §5: AUTH=<xtext mailbox> or AUTH=<>; recorded, never trusted.
        if (value === true) throw new SmtpReplyError(501, '5.5.4', 'AUTH= needs a value', true);
        auth = decodeXtext(value);
        break;
      default:
        // RFC 5321 §4.1.1.11: parameters not recognized.
        throw new SmtpReplyError(555, '5.5.4', `MAIL parameter ${key} not recognized`);
    }
  }
  return { size, body, smtpUtf8, auth };
}

/**
 * MAIL FROM (RFC 5321 §4.1.1.2). Policy first (TLS required, auth required: 530 5.7.0), then syntax, then the
 * hooks and the backend; on success the transaction starts (`mail`). Synchronous when no hook is bound and the
 * backend decides synchronously (issue 15: no promise per command on the common path).
 */
export function mailFrom(conn: SmtpConnection, args: string): void | Promise<void> {
  const s = conn.settings;
  if (s.requireTls && !conn.isSecure) throw new SmtpReplyError(530, '5.7.0', 'Must issue a STARTTLS command first');
  if (s.requireAuth && !conn.isAuthenticated) throw new SmtpReplyError(530, '5.7.0', 'Authentication required');
  const { address, params: raw } = parsePath(args, 'FROM');
  const params = mailParams(raw, s.maxMessageSize);
  if (isNonAscii(address) && !params.smtpUtf8) throw NEEDS_SMTPUTF8();
  if (conn.deps.hooks.length > 0) return mailFromHooked(conn, address, params);
  const deciding = conn.backend.mailFrom(address, params);
  if (deciding !== undefined) return deciding.then(() => startTransaction(conn, address, params));
  startTransaction(conn, address, params);
}

/** MAIL FROM with hooks bound: each hook's `onMailFrom` in order, then the backend. */
async function mailFromHooked(conn: SmtpConnection, address: string, params: MailParams): Promise<void> {
  await conn.runHooks((h) => h.onMailFrom?.(address, params, conn.context));
  await conn.backend.mailFrom(address, params);
  startTransaction(conn, address, params);
}

/** MAIL FROM accepted by the hooks and the backend: the transaction begins. */
function startTransaction(conn: SmtpConnection, address: string, params: MailParams): void {
  conn.tx = { from: address, params, rcptTo: [] };
  conn.enter('mail');
  conn.send(reply(250, '2.1.0', `Sender <${address}> OK`));
}

/**
 * RCPT TO (RFC 5321 §4.1.1.3). Recipient count limit first (452 4.5.3, RFC 5321 §4.5.3.1.10), then syntax, hooks
 * and backend (which decides local users and relaying). Synchronous like {@link mailFrom} when nothing awaits.
 */
export function rcptTo(conn: SmtpConnection, args: string): void | Promise<void> {
  const tx = conn.tx;
  if (!tx) throw new Error('RCPT without a transaction');
  const { address, params: raw } = parsePath(args, 'TO');
  if (raw.size > 0) throw new SmtpReplyError(555, '5.5.4', `RCPT parameter ${[...raw.keys()][0]} not recognized`);
  if (isNonAscii(address) && !tx.params.smtpUtf8) throw NEEDS_SMTPUTF8();
  if (tx.rcptTo.length >= conn.settings.maxRecipients) throw new SmtpReplyError(452, '4.5.3', 'Too many recipients');
  const params: RcptParams = {};
  if (conn.deps.hooks.length > 0) return rcptToHooked(conn, tx, address, params);
  const deciding = conn.backend.rcptTo(address, params);
  if (deciding !== undefined) return deciding.then(() => addRecipient(conn, tx, address));
  addRecipient(conn, tx, address);
}

/** RCPT TO with hooks bound: each hook's `onRcptTo` in order, then the backend. */
async function rcptToHooked(conn: SmtpConnection, tx: Transaction, address: string, params: RcptParams): Promise<void> {
  await conn.runHooks((h) => h.onRcptTo?.(address, params, conn.context));
  await conn.backend.rcptTo(address, params);
  addRecipient(conn, tx, address);
}

/** A recipient accepted by the hooks and the backend. */
function addRecipient(conn: SmtpConnection, tx: Transaction, address: string): void {
  tx.rcptTo.push(address);
  conn.enter('rcpt');
  conn.send(reply(250, '2.1.5', `Recipient <${address}> OK`));
}

/** RSET (RFC 5321 §4.1.1.5): abandons the transaction; the EHLO state stays. */
export async function reset(conn: SmtpConnection): Promise<void> {
  await conn.endTransaction();
  conn.send(REPLIES.ok);
}
