import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { BareLfPolicy } from '../smtp-options.js';
import type { SmtpConnection } from '../smtp-connection.js';
import { REPLIES, reply, SmtpReplyError } from '../smtp-replies.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Applies the bare-LF rule (see {@link BareLfPolicy}) to a body chunk by chunk; remembers the last byte so an LF
 * at the start of a chunk is judged correctly.
 */
export class BareLfFilter {
  private prev = LF;
  /** True once a bare LF was seen (policy `reject`). */
  found = false;
  constructor(private readonly policy: BareLfPolicy) {}

  /** Returns the chunk (normalized when the policy says so), or undefined when it must be rejected. */
  filter(chunk: Buffer): Buffer | undefined {
    if (chunk.length === 0) return chunk;
    // One native search per LF, no closure per chunk (issue 15: this runs over every octet of every body).
    let bare = 0;
    let i = chunk.indexOf(LF);
    if (i === 0) {
      if (this.prev !== CR) bare++;
      i = chunk.indexOf(LF, 1);
    }
    for (; i !== -1; i = chunk.indexOf(LF, i + 1)) if (chunk[i - 1] !== CR) bare++;
    let out = chunk;
    if (bare > 0) {
      if (this.policy === 'reject') {
        this.found = true;
        return undefined;
      }
      out = Buffer.allocUnsafe(chunk.length + bare);
      let o = 0;
      let prev = this.prev;
      for (let j = 0; j < chunk.length; j++) {
        const octet = chunk[j];
        if (octet === LF && prev !== CR) out[o++] = CR;
        out[o++] = octet;
        prev = octet;
      }
    }
    this.prev = chunk[chunk.length - 1];
    return out;
  }
}

/** The 552 of RFC 1870 §6.3 / RFC 5321 §4.5.3.1.10 for a body over the SIZE limit. */
export function tooBig(max: number): SmtpReplyError {
  return new SmtpReplyError(552, '5.3.4', `Message size exceeds fixed maximum message size (${max})`);
}

/**
 * DATA (RFC 5321 §4.1.1.4): 354, then the dot-terminated body streamed to the hooks and the backend. A body over
 * the SIZE limit or breaking the bare-LF rule is read to its end and refused (552 5.3.4 / 550 5.6.2) with the
 * session still usable. A client vanishing mid-body leaves nothing stored. 250 only after the backend stored it.
 */
export async function receive(conn: SmtpConnection): Promise<void> {
  const tx = conn.tx;
  if (!tx) throw new Error('DATA without a transaction');
  conn.send(REPLIES.dataGoAhead);
  const writing = conn.writeQueued();
  if (writing !== undefined) await writing;
  const max = conn.settings.maxMessageSize;
  const lf = new BareLfFilter(conn.settings.bareLf);
  const delivery = await conn.openDelivery(tx);
  let size = 0;
  let refusal: SmtpReplyError | undefined;
  try {
    // One closure per message, no generator or promise per part (issue 15); a refused body is read to its end.
    await conn.reader.readDotBodyTo((chunk) => {
      if (refusal || delivery.error !== undefined) return; // keep reading to the terminator
      size += chunk.length;
      if (max > 0 && size > max) {
        refusal = tooBig(max);
        void delivery.abort();
        return;
      }
      const out = lf.filter(chunk);
      if (!out) {
        refusal = new SmtpReplyError(550, '5.6.2', 'Bare LF not allowed in message (RFC 5321 section 2.3.8)');
        void delivery.abort();
        return;
      }
      const written = delivery.write(out);
      // A stream's backpressure; collected chunks need no wait.
      return typeof written === 'boolean' ? undefined : written.then(ignore);
    });
    if (!conn.reader.lastBodyComplete) {
      conn.log.warn('client vanished during DATA, message dropped', { size });
      await delivery.abort();
      return;
    }
    // A `data` fault: the body is in, the reply is the rule's (or comes late); a refused body is never stored.
    if (!refusal && (await conn.injectFault('data', tx.rcptTo))) {
      await delivery.abort();
      return;
    }
    // The reply (LMTP: one per recipient) and the refusals (size, bare LF, hooks, backend) are the session's.
    await conn.completeMessage(tx, delivery, size, refusal);
  } finally {
    await conn.endTransaction();
  }
}

// RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT.
const BDAT_ARGS = /^(\d{1,15})(?: +(LAST))?$/i;

/**
 * BDAT (RFC 3030 CHUNKING). Always reads the announced octets first, whatever the state, so the stream stays in
 * sync; then answers: 503 out of sequence, 552 over SIZE (the transaction is then abandoned), `250` per chunk, and
 * after LAST the result of the delivery.
 */
export async function bdat(conn: SmtpConnection, args: string): Promise<void> {
  const m = BDAT_ARGS.exec(args);
  if (!m) {
    // The chunk follows the command whatever we think of the rest of it: when its size can be read, consume it
    // so that its octets are never taken for commands.
    const size = /^(\d{1,15})(?: |$)/.exec(args);
    if (size) await skip(conn, Number(size[1]));
    throw new ProtocolSyntaxError('BDAT <size> [LAST]');
  }
  const count = Number(m[1]);
  const last = m[2] !== undefined;
  const tx = conn.tx;
  if (!tx || (conn.state !== 'rcpt' && conn.state !== 'bdat')) {
    await skip(conn, count);
    throw new SmtpReplyError(503, '5.5.1', 'Bad sequence of commands: need RCPT before BDAT');
  }
  const max = conn.settings.maxMessageSize;
  if (!tx.bdat) {
    tx.bdat = { delivery: await conn.openDelivery(tx), size: 0 };
    conn.enter('bdat');
  }
  const t = tx.bdat;
  let got = 0;
  let refusal: SmtpReplyError | undefined;
  for await (const part of conn.reader.readBytes(count)) {
    got += part.length;
    if (refusal || t.delivery.error !== undefined) continue;
    t.size += part.length;
    if (max > 0 && t.size > max) {
      refusal = tooBig(max);
      void t.delivery.abort();
      continue;
    }
    const written = t.delivery.write(part);
    if (typeof written !== 'boolean') await written;
  }
  if (got < count) {
    conn.log.warn('client vanished during BDAT, message dropped', { size: t.size });
    await conn.endTransaction();
    return;
  }
  if (last) {
    // The message is complete (or refused whole): answered like the end of DATA (LMTP: once per recipient).
    try {
      if (!refusal && t.delivery.error === undefined && (await conn.injectFault('data', tx.rcptTo))) {
        await t.delivery.abort();
        return;
      }
      await conn.completeMessage(tx, t.delivery, t.size, refusal);
    } finally {
      tx.bdat = undefined;
      await conn.endTransaction();
    }
    return;
  }
  if (refusal) {
    await conn.endTransaction();
    throw refusal;
  }
  if (t.delivery.error !== undefined) {
    await conn.endTransaction(); // aborts the delivery; the consumer's refusal is rethrown below
    throw t.delivery.error;
  }
  conn.send(reply(250, '2.0.0', `${count} octets received`));
}

function ignore(): void {}

async function skip(conn: SmtpConnection, count: number): Promise<void> {
  for await (const part of conn.reader.readBytes(count)) void part;
}
