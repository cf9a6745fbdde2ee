import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { withQuota } from '../../lib/backends/quota/quota-mail-store.js';
import { instrumentStore, PosternMetrics } from '../../lib/metrics/postern-metrics.js';
import { allMessages } from '../../lib/test-double/store-queries.js';
import type { MailStore } from '../../lib/contracts/mail-store.js';
import { MailStoreSmtpBackend } from '../../lib/smtp/mail-store-smtp-backend.js';
import { ARENA_SIZE, MessageSlabs, SLAB_SIZE } from '../../lib/smtp/message-slabs.js';
import { resolveSmtpSettings } from '../../lib/smtp/smtp-options.js';
import { envelope } from './envelopes.js';

const PAGE = 4096;
/** One turn of the event loop: the prefault `take()` scheduled has run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The whole slab `part` was cut from. */
function slabOf(part: Buffer): Uint8Array {
  return new Uint8Array(part.buffer, 0, part.buffer.byteLength);
}

describe('smtp: stored messages are cut from slabs touched ahead of use (MessageSlabs)', () => {
  it('cuts small messages from one slab, 8-octet aligned and never overlapping; a large one gets its own memory', () => {
    const slabs = new MessageSlabs(64 * 1024, 8 * 1024, 16 * 1024);
    const a = slabs.take(100);
    const b = slabs.take(5000);
    const c = slabs.take(8 * 1024);
    expect([a.length, b.length, c.length]).to.deep.equal([100, 5000, 8 * 1024]);
    expect(b.buffer).to.equal(a.buffer);
    expect(c.buffer).to.equal(a.buffer);
    expect([a.byteOffset, b.byteOffset, c.byteOffset]).to.deep.equal([0, 104, 5104]);
    const large = slabs.take(8 * 1024 + 1);
    expect(large.buffer).to.not.equal(a.buffer);
    expect(large.length).to.equal(8 * 1024 + 1);
  });

  it('lets a slab go once no message cut from it is left, even while it is the current one', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const slabs = new MessageSlabs(64 * 1024, 8 * 1024, 16 * 1024);
    let part: Buffer | undefined = slabs.take(100);
    const slab = new WeakRef(part.buffer);
    part = undefined;
    // A WeakRef read during a turn keeps its target until the turn ends (this one, and the prefault's).
    await nextTurn();
    await nextTurn();
    gc();
    expect(slab.deref()).to.equal(undefined);
    const next = slabs.take(100);
    expect(next.byteOffset).to.equal(0);
    expect(next.buffer.byteLength).to.equal(64 * 1024);
  });

  it('starts a new slab when a message does not fit in the rest of the current one', () => {
    const slabs = new MessageSlabs(16 * 1024, 8 * 1024, 4 * 1024);
    const a = slabs.take(8 * 1024);
    const b = slabs.take(6 * 1024);
    const c = slabs.take(4 * 1024);
    expect(b.buffer).to.equal(a.buffer);
    expect(c.buffer).to.not.equal(a.buffer);
    expect(c.byteOffset).to.equal(0);
  });

  it('after the turn, has written one octet per page from the next free page to `ahead` plus the last message past the write position', async () => {
    const slabs = new MessageSlabs(64 * 1024, 8 * 1024, 16 * 1024);
    const part = slabs.take(5000);
    part.fill(0xaa);
    const slab = slabOf(part);
    slab.fill(0xff, 5000);
    await nextTurn();
    // Pages from 8192 (the first page boundary past the 5,000 octets handed out) up to 5,000 + 16 KB + 5,000.
    const written = [...slab.keys()].filter((i) => slab[i] === 0);
    expect(written).to.deep.equal([8192, 12288, 16384, 20480, 24576]);
    expect(part.every((octet) => octet === 0xaa)).to.equal(true);
  });

  it('never writes into octets already handed out, however far the touching was behind', () => {
    const slabs = new MessageSlabs(64 * 1024, 16 * 1024, 8 * 1024);
    const parts = [slabs.take(5000), slabs.take(12000), slabs.take(3000)];
    for (const part of parts) part.fill(0xaa);
    const slab = slabOf(parts[0]!);
    slab.fill(0xff, 20000);
    slabs.prefault();
    for (const part of parts) expect(part.every((octet) => octet === 0xaa)).to.equal(true);
    // The pages past the last message (20,000 octets) up to 8 KB + 3,000 further were touched.
    expect([...slab.keys()].filter((i) => slab[i] === 0)).to.deep.equal([20480, 24576, 28672]);
  });

  it('touches the next slab before the current one runs out, and cuts from that one next', () => {
    const made: Buffer[] = [];
    const allocUnsafeSlow = Buffer.allocUnsafeSlow;
    Buffer.allocUnsafeSlow = (size: number): Buffer<ArrayBuffer> => {
      const buf = allocUnsafeSlow(size);
      buf.fill(0xff);
      made.push(buf);
      return buf;
    };
    try {
      const slabs = new MessageSlabs(32 * 1024, 16 * 1024, 16 * 1024);
      slabs.take(16 * 1024);
      slabs.take(12 * 1024); // 28 KB used: touching 16 KB + 12 KB ahead runs 24 KB into the next slab
      slabs.prefault();
      expect(made).to.have.length(2);
      const spare = made[1]!;
      expect([0, 1, 2, 3, 4, 5].map((i) => spare[i * PAGE])).to.deep.equal([0, 0, 0, 0, 0, 0]);
      expect(spare[6 * PAGE]).to.equal(0xff);
      const next = slabs.take(8 * 1024);
      expect(next.buffer).to.equal(spare.buffer);
      expect(next.byteOffset).to.equal(0);
      expect(made).to.have.length(2);
      // The spare's pages up to 24 KB were touched before it was taken: touching goes on from there, not again.
      spare.fill(0xff, 8 * 1024);
      slabs.prefault();
      expect([...spare.keys()].filter((i) => i >= 8 * 1024 && spare[i] === 0)).to.deep.equal([24576, 28672]);
    } finally {
      Buffer.allocUnsafeSlow = allocUnsafeSlow;
    }
  });
});

describe('smtp: the default backend copies a message into the pool its store calls for', () => {
  /** The memory store behind a store that records the Buffer each delivery got; `keeps` is its keepsMessageBuffers. */
  async function deliveredBuffer(keeps: boolean | undefined): Promise<Buffer> {
    const memory = new MemoryMailStore();
    await memory.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
    const got: Buffer[] = [];
    const store: MailStore = {
      users: memory.users,
      ...(keeps === undefined ? {} : { keepsMessageBuffers: keeps }),
      deliver: (address, raw, options) => {
        got.push(raw);
        return memory.deliver(address, raw, options);
      },
      openUser: (username) => memory.openUser(username),
    };
    const backend = new MailStoreSmtpBackend(store, resolveSmtpSettings({ hostname: 'mx.example.org' }));
    const session = await backend.openSession({ hostname: 'mx.example.org', peer: envelope([]).peer });
    const body = Buffer.from('Subject: slab\r\n\r\nhello\r\n', 'latin1');
    await session.dataChunks!([body], body.length, envelope(['alice@example.org']));
    expect(got).to.have.length(1);
    expect(got[0]!.toString('latin1')).to.equal(`Return-Path: <app@example.test>\r\n${body.toString('latin1')}`);
    return got[0]!;
  }

  it('cuts it from a 64 MB arena for a store that keeps the Buffer (the memory store)', async () => {
    expect(new MemoryMailStore().keepsMessageBuffers).to.equal(true);
    expect((await deliveredBuffer(true)).buffer.byteLength).to.equal(ARENA_SIZE);
  });

  it('keeps every message intact across the end of an arena (70 messages of 1 MB, each turn letting the touching run)', async () => {
    const memory = new MemoryMailStore();
    await memory.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
    const backend = new MailStoreSmtpBackend(memory, resolveSmtpSettings({ hostname: 'mx.example.org' }));
    const session = await backend.openSession({ hostname: 'mx.example.org', peer: envelope([]).peer });
    const bodies = Array.from({ length: 70 }, (_, i) => Buffer.alloc(1024 * 1024 - 40 + i, 0x41 + (i % 26)));
    const arenas = new Set<ArrayBufferLike>();
    for (const body of bodies) {
      await session.dataChunks!([body.subarray(0, 1000), body.subarray(1000)], body.length, envelope(['alice@example.org']));
      await nextTurn();
    }
    const head = Buffer.from('Return-Path: <app@example.test>\r\n', 'latin1');
    const stored = await Promise.all((await allMessages(memory)).map((m) => m.message.raw()));
    expect(stored).to.have.length(70);
    stored.forEach((raw, i) => {
      arenas.add(raw.buffer);
      expect(raw.equals(Buffer.concat([head, bodies[i]!])), `message ${i}`).to.equal(true);
    });
    expect(arenas.size).to.be.greaterThan(1);
  });

  it('sees through the quota and metrics wrappers around the memory store (they forward keepsMessageBuffers)', () => {
    const memory = new MemoryMailStore();
    expect(withQuota(memory, { storage: 1024 * 1024 }).keepsMessageBuffers).to.equal(true);
    expect(instrumentStore(memory, new PosternMetrics()).keepsMessageBuffers).to.equal(true);
  });

  it('cuts it from a 256 KB slab for a store that writes it out (keepsMessageBuffers unset or false)', async () => {
    expect((await deliveredBuffer(undefined)).buffer.byteLength).to.equal(SLAB_SIZE);
    expect((await deliveredBuffer(false)).buffer.byteLength).to.equal(SLAB_SIZE);
  });
});
