import type { DsnNotify, MailParams, RcptParams } from '../smtp-backend.js';
import type { SmtpConnection, Transaction } from '../smtp-connection.js';
import { decodeXtext, isNonAscii, parsePath } from '../smtp-address.js';
import { REPLIES, reply, SmtpReplyError } from '../smtp-replies.js';

/** RFC 6531 §3.5: a non-ASCII address needs the SMTPUTF8 parameter on MAIL. */
const NEEDS_SMTPUTF8 = (): SmtpReplyError => new SmtpReplyError(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8');

/**
 * MAIL's parameters. `dsn`: DSN is offered; `requireTls`: REQUIRETLS is offered on this session (RFC 8689: over TLS
 * only), else those parameters are unknown ones (555).
 */
function mailParams(raw: ReadonlyMap<string, string | true>, maxSize: number, dsn: boolean, requireTls: boolean): MailParams {
  let size: number | undefined;
  let body: MailParams['body'];
  let smtpUtf8 = false;
  let auth: string | undefined;
  let ret: MailParams['ret'];
  let envid: string | undefined;
  let tlsRequired = false;
  for (const [key, value] of raw) {
    // DSN's parameters are unknown ones unless DSN is offered (EHLO lists it only then).
    if (!dsn && (key === 'RET' || key === 'ENVID')) throw new SmtpReplyError(555, '5.5.4', `MAIL parameter ${key} not recognized`);
    switch (key) {
      case 'RET': {
        // RFC 3461 §4.3: RET=FULL / RET=HDRS.
        const v = value === true ? '' : value.toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS') throw new SmtpReplyError(501, '5.5.4', 'RET must be FULL or HDRS', true);
        ret = v;
        break;
      }
      case 'ENVID': {
        // RFC 3461 §4.4: xtext of printable US-ASCII, at most 100 characters.
        const v = value === true ? '' : decodeXtext(value);
        if (!/^[\x21-\x7e]{1,100}$/.test(v)) throw new SmtpReplyError(501, '5.5.4', 'ENVID must be 1 to 100 printable US-ASCII characters (xtext)', true);
        envid = v;
        break;
      }
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
      case 'REQUIRETLS':
        // RFC 8689 §4.1: no value; only where EHLO offered it (a TLS session).
        if (!requireTls) throw new SmtpReplyError(555, '5.5.4', 'MAIL parameter REQUIRETLS not recognized');
        if (value !== true) throw new SmtpReplyError(501, '5.5.4', 'REQUIRETLS takes no value', true);
        tlsRequired = true;
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
  // The DSN and REQUIRETLS fields only when given: the common MAIL keeps its four-field shape.
  if (ret === undefined && envid === undefined && !tlsRequired) return { size, body, smtpUtf8, auth };
  return { size, body, smtpUtf8, auth, ret, envid, ...(tlsRequired ? { requireTls: true as const } : {}) };
}

/** RCPT TO without parameters (the common case): one frozen object for all. */
const NO_RCPT_PARAMS: RcptParams = Object.freeze({});
const NOTIFY_KEYWORDS: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

/** RCPT TO's parameters: DSN's NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) when offered; any other one is refused with 555. */
function rcptParams(raw: ReadonlyMap<string, string | true>, dsn: boolean): RcptParams {
  let notify: DsnNotify[] | undefined;
  let orcpt: RcptParams['orcpt'];
  for (const [key, value] of raw) {
    if (dsn && key === 'NOTIFY') {
      const words = value === true ? [''] : value.toUpperCase().split(',');
      const ok = words.length === 1 && words[0] === 'NEVER' ? true : words.every((w) => NOTIFY_KEYWORDS.has(w)) && new Set(words).size === words.length;
      if (!ok) throw new SmtpReplyError(501, '5.5.4', 'NOTIFY must be NEVER or a list of SUCCESS, FAILURE and DELAY', true);
      notify = words as DsnNotify[];
    } else if (dsn && key === 'ORCPT') {
      // RFC 3461 §4.2: addr-type ";" xtext, the decoded address at most 500 characters.
      const m = value === true ? null : /^([A-Za-z0-9][A-Za-z0-9-]*);(.+)$/.exec(value);
      const address = m ? decodeXtext(m[2]!) : '';
      if (!m || address.length > 500) throw new SmtpReplyError(501, '5.5.4', 'ORCPT must be addr-type;xtext (e.g. rfc822;alice@example.com)', true);
      orcpt = { addressType: m[1]!.toLowerCase(), address };
    } else {
      throw new SmtpReplyError(555, '5.5.4', `RCPT parameter ${key} not recognized`);
    }
  }
  return notify !== undefined && orcpt !== undefined ? { notify, orcpt } : notify !== undefined ? { notify } : { orcpt };
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
  const params = mailParams(raw, s.maxMessageSize, s.dsn, s.requireTlsExtension && conn.isSecure);
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
  const params = raw.size === 0 ? NO_RCPT_PARAMS : rcptParams(raw, conn.settings.dsn);
  if (isNonAscii(address) && !tx.params.smtpUtf8) throw NEEDS_SMTPUTF8();
  if (tx.rcptTo.length >= conn.settings.maxRecipients) throw new SmtpReplyError(452, '4.5.3', 'Too many recipients');
  if (conn.deps.hooks.length > 0) return rcptToHooked(conn, tx, address, params);
  const deciding = conn.backend.rcptTo(address, params);
  if (deciding !== undefined) return deciding.then(() => addRecipient(conn, tx, address, params));
  addRecipient(conn, tx, address, params);
}

/** RCPT TO with hooks bound: each hook's `onRcptTo` in order, then the backend. */
async function rcptToHooked(conn: SmtpConnection, tx: Transaction, address: string, params: RcptParams): Promise<void> {
  await conn.runHooks((h) => h.onRcptTo?.(address, params, conn.context));
  await conn.backend.rcptTo(address, params);
  addRecipient(conn, tx, address, params);
}

/**
 * A recipient accepted by the hooks and the backend. Its parameters are kept beside it only once some recipient of
 * the transaction gave any (`rcptParams`, filled with `{}` for the ones before): a plain RCPT adds nothing.
 */
function addRecipient(conn: SmtpConnection, tx: Transaction, address: string, params: RcptParams): void {
  if (tx.rcptParams !== undefined) tx.rcptParams.push(params);
  else if (params !== NO_RCPT_PARAMS) tx.rcptParams = [...tx.rcptTo.map(() => NO_RCPT_PARAMS), params];
  tx.rcptTo.push(address);
  conn.enter('rcpt');
  conn.send(reply(250, '2.1.5', `Recipient <${address}> OK`));
}

/** RSET (RFC 5321 §4.1.1.5): abandons the transaction; the EHLO state stays. */
export async function reset(conn: SmtpConnection): Promise<void> {
  await conn.endTransaction();
  conn.send(REPLIES.ok);
}
