import { expect } from 'chai';
import { MailStoreError, supportsWatch } from '../../lib/contracts/mail-store.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { storageUsed, withQuota } from '../../lib/backends/quota/quota-mail-store.js';

/** [code, message] of a rejected promise's MailStoreError. */
async function refusal(promise: Promise<unknown>): Promise<[string, string]> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(MailStoreError);
    return [(err as MailStoreError).code, (err as MailStoreError).message];
  }
  expect.fail('expected a MailStoreError');
}

const OVER = ['OVER_QUOTA', 'Storage quota exceeded'];
const octets = (n: number): Buffer => Buffer.alloc(n, 0x61);

// Written against the mutants StrykerJS left alive in quota-mail-store.ts (README, "Scores (Stryker").
describe('withQuota: the limit at its exact edge, per user, for delivery, APPEND and COPY', () => {
  async function store(options: Parameters<typeof withQuota>[1]): Promise<ReturnType<typeof withQuota<MemoryMailStore>>> {
    const inner = new MemoryMailStore();
    await inner.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.test'] });
    await inner.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.test'] });
    await inner.users.add({ username: 'constructor', password: 'pw' });
    return withQuota(inner, options);
  }

  it('accepts a delivery that fills the limit exactly and refuses one octet more', async () => {
    const quoted = await store({ storage: 100 });
    await quoted.deliver('alice@example.test', octets(60));
    await quoted.deliver('alice@example.test', octets(40));
    expect(await quoted.quota('alice')).to.deep.equal({ used: 100, limit: 100 });
    expect(await refusal(quoted.deliver('alice@example.test', octets(1)))).to.deep.equal(OVER);
    // An unknown recipient is the store's refusal, not the quota's.
    expect((await refusal(quoted.deliver('nobody@example.test', octets(1))))[0]).to.equal('NO_SUCH_USER');
  });

  it('takes a per-user limit over the default, and only a user of its own (not a name of Object.prototype)', async () => {
    const quoted = await store({ storage: 10, users: { bob: 1000 } });
    await quoted.deliver('bob@example.test', octets(500));
    expect(await quoted.quota('bob')).to.deep.equal({ used: 500, limit: 1000 });
    expect(await quoted.quota('constructor')).to.deep.equal({ used: 0, limit: 10 });
    const unlimited = await store({ users: { bob: 5 } });
    expect(await unlimited.quota('alice')).to.equal(undefined);
    await unlimited.deliver('alice@example.test', octets(10_000));
    const view = await unlimited.openUser('alice');
    expect((await view.append('INBOX', octets(10_000))).uid).to.equal(2);
    await view.release();
  });

  it('checks APPEND and COPY against the limit at its exact edge, counts every mailbox, and lets MOVE through', async () => {
    const quoted = await store({ storage: 100 });
    const view = await quoted.openUser('alice');
    await view.create('Archive/2024');
    await view.append('Archive/2024', octets(30));
    await view.append('INBOX', octets(20));
    await view.create('Old/x');
    await view.delete('Old'); // a \Noselect level: no messages to count, and none to ask for
    expect(await storageUsed(view)).to.equal(50);
    await view.append('INBOX', octets(25));
    // 75 used: copying both INBOX messages (45) goes over, copying the 25 octets fills it exactly.
    expect(await refusal(view.copy('INBOX', [1, 2], 'Archive'))).to.deep.equal(OVER);
    expect(await view.copy('INBOX', [2], 'Archive')).to.deep.equal([[2, 1]]);
    expect(await storageUsed(view)).to.equal(100);
    expect(await refusal(view.append('INBOX', octets(1)))).to.deep.equal(OVER);
    expect(await view.move('INBOX', [1], 'Archive/2024')).to.deep.equal([[1, 2]]);
    expect(await storageUsed(view)).to.equal(100);
    expect(await view.expunge('Archive', [1])).to.deep.equal([1]);
    expect((await view.append('INBOX', octets(25))).uid).to.equal(3);
    expect(await storageUsed(view)).to.equal(100);
    expect(view.username).to.equal('alice');
    await view.release();
  });

  it('keeps the store\'s own capabilities and properties behind the proxy', async () => {
    const quoted = await store({ storage: 100 });
    expect(supportsWatch(quoted)).to.equal(true);
    const seen: string[] = [];
    const stop = quoted.watch((e) => seen.push(e.type));
    await quoted.deliver('alice@example.test', octets(1));
    stop();
    expect(seen).to.deep.equal(['exists']);
    expect(quoted.hasObjectIdentity).to.equal(true);
  });
});
