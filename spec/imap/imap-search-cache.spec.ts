/** SEARCH on header fields from the Maildir store's index cache, without reading message files. */
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { message, startImap, type ImapHarness } from './imap-harness.js';

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
});
