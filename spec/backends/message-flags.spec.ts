import { expect } from 'chai';
import { applyFlags, sameFlags } from '../../lib/backends/shared/message-flags.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import type { MailboxEvent } from '../../lib/contracts/mail-store.js';
import { message } from './mail-store-suite.js';

// Written against the mutants StrykerJS left alive in message-flags.ts (README, "Scores (Stryker").
describe('shared message flags: STORE arithmetic', () => {
  it('keeps the first spelling of a keyword when STORE +FLAGS adds it again in another case', () => {
    expect([...applyFlags(['Work', '\\Seen'], ['WORK', 'new', '\\SEEN'], 'add')]).to.deep.equal(['Work', '\\Seen', 'new']);
    expect([...applyFlags(['Work', '\\Seen'], ['wORK', '\\seen'], 'remove')]).to.deep.equal([]);
    expect([...applyFlags(['Work'], ['WORK'], 'set')]).to.deep.equal(['WORK']);
  });

  it('tells equal flag sets from sets of the same size or a subset', () => {
    expect(sameFlags(new Set(['\\Seen', 'a']), new Set(['a', '\\Seen']))).to.equal(true);
    expect(sameFlags(new Set(), new Set())).to.equal(true);
    expect(sameFlags(new Set(['\\Seen']), new Set(['\\Flagged']))).to.equal(false);
    expect(sameFlags(new Set(['\\Seen', 'a']), new Set(['\\Seen']))).to.equal(false);
    expect(sameFlags(new Set(['\\Seen', 'a']), new Set(['\\Seen', 'b']))).to.equal(false);
  });

  it('gives a flag change of the same size a new modseq and a flags event, and a no-op neither', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const view = await store.openUser('alice');
    const { modseq } = await view.append('INBOX', message('1'), ['\\Seen']);
    const events: MailboxEvent[] = [];
    const stop = store.watch((e) => events.push(e));
    const [same] = await view.setFlags('INBOX', [1], ['\\seen'], 'set');
    const [swapped] = await view.setFlags('INBOX', [1], ['\\Flagged'], 'set');
    stop();
    expect(same!.modseq).to.equal(modseq);
    expect([...swapped!.flags]).to.deep.equal(['\\Flagged']);
    expect(swapped!.modseq).to.be.greaterThan(modseq);
    expect(events).to.deep.equal([{ type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [1] }]);
    await view.release();
  });
});
