import { expect } from 'chai';
import { decodeEvents, encodeEvents } from '../../lib/backends/postgres/pg-events.js';
import type { MailboxEvent } from '../../lib/contracts/mail-store.js';

/** The NOTIFY payloads of the PostgreSQL store (`pg-events.ts`): exact wire text, folding, splitting, refusals. */
describe('PostgreSQL NOTIFY payloads (pg-events)', () => {
  const exists = (mailbox: string, uid: number, username = 'alice'): MailboxEvent => ({ type: 'exists', username, mailbox, uid });

  it('folds consecutive exists events of one mailbox into one payload, in order, and keeps the others apart', () => {
    const payloads = encodeEvents('n1', [
      exists('INBOX', 1),
      exists('INBOX', 2),
      exists('INBOX', 3, 'bob'),
      exists('Box', 1),
      { type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [2] },
      exists('INBOX', 4),
      { type: 'mailbox', username: 'alice', mailbox: 'Old', change: 'renamed', newName: 'New' },
      exists('INBOX', 5),
    ]);
    expect(payloads).to.deep.equal([
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"INBOX","uids":[1,2]}}',
      '{"n":"n1","e":{"type":"exists","username":"bob","mailbox":"INBOX","uids":[3]}}',
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"Box","uids":[1]}}',
      '{"n":"n1","e":{"type":"flags","username":"alice","mailbox":"INBOX","uids":[2]}}',
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"INBOX","uids":[4]}}',
      '{"n":"n1","e":{"type":"mailbox","username":"alice","mailbox":"Old","change":"renamed","newName":"New"}}',
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"INBOX","uids":[5]}}',
    ]);
    expect(encodeEvents('n1', [])).to.deep.equal([]);
    expect(encodeEvents('n1', [exists('INBOX', 1), exists('Box', 2)]), 'same user, another mailbox').to.deep.equal([
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"INBOX","uids":[1]}}',
      '{"n":"n1","e":{"type":"exists","username":"alice","mailbox":"Box","uids":[2]}}',
    ]);
  });

  it('splits UID lists at 500 per payload, each under PostgreSQL 8000-octet NOTIFY limit', () => {
    const uids = Array.from({ length: 1001 }, (_, i) => 4_000_000_000 + i);
    const many = encodeEvents('n', uids.map((uid) => exists('INBOX', uid)));
    expect(many.map((p) => (JSON.parse(p) as { e: { uids: number[] } }).e.uids)).to.deep.equal([uids.slice(0, 500), uids.slice(500, 1000), uids.slice(1000)]);
    for (const type of ['expunge', 'flags'] as const) {
      const parts = encodeEvents('n', [{ type, username: 'alice', mailbox: 'INBOX', uids: uids.slice(0, 501) }]);
      expect(parts.map((p) => JSON.parse(p) as unknown)).to.deep.equal([
        { n: 'n', e: { type, username: 'alice', mailbox: 'INBOX', uids: uids.slice(0, 500) } },
        { n: 'n', e: { type, username: 'alice', mailbox: 'INBOX', uids: [uids[500]] } },
      ]);
      expect(Math.max(...parts.map((p) => Buffer.byteLength(p)))).to.be.below(8000);
    }
    expect(Math.max(...many.map((p) => Buffer.byteLength(p)))).to.be.below(8000);
    const exactly = encodeEvents('n', [{ type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: uids.slice(0, 500) }]);
    expect(exactly, '500 UIDs: one payload, no empty one after it').to.have.length(1);
  });

  it('decodes what it encodes', () => {
    const events: MailboxEvent[] = [
      exists('INBOX', 7),
      exists('INBOX', 8),
      { type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: [1, 2] },
      { type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [4] },
      { type: 'mailbox', username: 'alice', mailbox: 'A', change: 'created' },
      { type: 'mailbox', username: 'alice', mailbox: 'A', change: 'deleted' },
      { type: 'mailbox', username: 'alice', mailbox: 'A', change: 'renamed', newName: 'B' },
    ];
    const decoded = encodeEvents('node-1', events).map((p) => decodeEvents(p));
    expect(decoded.every((d) => d?.node === 'node-1')).to.equal(true);
    expect(decoded.flatMap((d) => d!.events)).to.deep.equal(events);
  });

  it('takes only the known fields of a payload', () => {
    const payload = JSON.stringify({ n: 'x', e: { type: 'expunge', username: 'u', mailbox: 'm', uids: [3], extra: 1, modseq: 9 } });
    expect(decodeEvents(payload)).to.deep.equal({ node: 'x', events: [{ type: 'expunge', username: 'u', mailbox: 'm', uids: [3] }] });
    const created = JSON.stringify({ n: 'x', e: { type: 'mailbox', username: 'u', mailbox: 'm', change: 'created', newName: 'ignored' } });
    expect(decodeEvents(created)).to.deep.equal({ node: 'x', events: [{ type: 'mailbox', username: 'u', mailbox: 'm', change: 'created' }] });
  });

  it('ignores anything malformed another program may NOTIFY on the channel', () => {
    const e = { type: 'exists', username: 'u', mailbox: 'm', uids: [1] };
    const bad: unknown[] = [
      null,
      7,
      'text',
      {},
      { n: 1, e },
      { n: 'x' },
      { n: 'x', e: null },
      { n: 'x', e: { ...e, username: 1 } },
      { n: 'x', e: { ...e, mailbox: null } },
      { n: 'x', e: { ...e, type: 'bogus' } },
      { n: 'x', e: { ...e, uids: 1 } },
      { n: 'x', e: { ...e, uids: [1, 1.5] } },
      { n: 'x', e: { ...e, uids: ['1'] } },
      { n: 'x', e: { ...e, type: 'expunge', uids: [2 ** 53] } },
      { n: 'x', e: { ...e, type: 'flags', uids: 'all' } },
      { n: 'x', e: { type: 'mailbox', username: 'u', mailbox: 'm', change: 'moved' } },
      { n: 'x', e: { type: 'mailbox', username: 'u', mailbox: 'm', change: 'renamed' } },
      { n: 'x', e: { type: 'mailbox', username: 'u', mailbox: 'm', change: 'renamed', newName: 5 } },
    ];
    for (const wire of bad) expect(decodeEvents(JSON.stringify(wire)), JSON.stringify(wire)).to.equal(undefined);
    expect(decodeEvents('{not json')).to.equal(undefined);
    expect(decodeEvents(JSON.stringify({ n: 'x', e }))).to.deep.equal({ node: 'x', events: [{ type: 'exists', username: 'u', mailbox: 'm', uid: 1 }] });
  });
});
