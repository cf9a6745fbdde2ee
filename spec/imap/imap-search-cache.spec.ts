/** SEARCH on header fields from the Maildir store's index cache, without reading message files. */
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { LARGE_MESSAGE_OCTETS } from '../../lib/imap/imap-partial-read.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { matchesSearch, searchCandidate } from '../../lib/imap/imap-search-match.js';
import { parseSearch } from '../../lib/imap/imap-search.js';
import { countingReads, noReads, type Reads } from '../support/counted-reads.js';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';

describe('imap: header SEARCH from the index cache (Maildir store)', () => {
  let h: ImapHarness;
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-imap-search-cache-'));
    h = await startImap({}, {}, [maildirModule(root), imapModule]);
  });
  afterEach(async () => {
    await h.close();
    await rm(root, { recursive: true, force: true });
  });

  it('answers FROM and SUBJECT from the cached structure without reading the file, and BODY from the file', async () => {
    await h.deliver(message('cached one', 'needle in the body\r\n'));
    await h.deliver(message('other'));
    // Empty the first file behind the store's back: only the cache still knows its header.
    const dir = join(root, 'mail', 'alice', 'new');
    const files = (await readdir(dir)).sort();
    await truncate(join(dir, files[0]!), 0);
    const c = await h.loginAlice();
    await c.command('S EXAMINE INBOX', /^S OK/);
    expect(await c.command('A SEARCH FROM bob SUBJECT "cached one"', /^A /)).to.deep.equal(['* SEARCH 1', 'A OK SEARCH completed']);
    expect((await c.command('B SEARCH HEADER X-Other x', /^B /))[0]).to.equal('* SEARCH');
    expect((await c.command('C SEARCH BODY needle', /^C /))[0]).to.equal('* SEARCH');
    await c.close();
  });
  it('answers HEADER on a field the cache does not keep from the header of a large message, and BODY from the file', async () => {
    const body = `${'filler line of a large message\r\n'.repeat(Math.ceil(LARGE_MESSAGE_OCTETS / 32))}needle\r\n`;
    const raw = Buffer.from(message('large', body).replace('\r\n\r\n', '\r\nX-Tag: blue\r\n\r\n'), 'latin1');
    const stored = await h.store.deliver(ALICE.addresses[0], raw);
    const matches = async (keys: string, reads: Reads): Promise<boolean> =>
      matchesSearch(parseSearch(parseCommandText(`t SEARCH ${keys}`).args).key, searchCandidate(countingReads(stored, reads), 1, false), { messageCount: 1, maxUid: 1 });
    const headerLength = raw.indexOf('\r\n\r\n') + 4;
    const header = noReads();
    expect(await matches('HEADER X-Tag blue SUBJECT large', header)).to.equal(true);
    expect(header).to.deep.equal({ whole: 0, streamed: 0, prefixes: [headerLength] });
    const missing = noReads();
    expect(await matches('HEADER X-Tag green', missing)).to.equal(false);
    expect(missing).to.deep.equal({ whole: 0, streamed: 0, prefixes: [headerLength] });
    const both = noReads();
    expect(await matches('BODY needle HEADER X-Tag blue', both)).to.equal(true);
    expect(both).to.deep.equal({ whole: 1, streamed: 0, prefixes: [] }); // the body's read serves the header too
    const c = await h.loginAlice();
    await c.command('S EXAMINE INBOX', /^S OK/);
    expect(await c.command('A SEARCH HEADER X-Tag blue', /^A /)).to.deep.equal(['* SEARCH 1', 'A OK SEARCH completed']);
    await c.close();
  });
});
