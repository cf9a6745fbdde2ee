/** What several sessions on one mailbox see of each other (imaptest copy and its stress mode), on both stores. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ContainerModule } from 'inversify';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import type { LineClient } from '../support/line-client.js';
import { message, startImap, type ImapHarness } from './imap-harness.js';

const STORES: Array<{ name: string; modules: (root: string) => ContainerModule[] }> = [
  { name: 'memory', modules: () => [memoryModule, imapModule] },
  { name: 'maildir', modules: (root) => [maildirModule(root), imapModule] },
];

for (const kind of STORES) {
  describe(`imap sessions sharing a mailbox (${kind.name} store)`, () => {
    let h: ImapHarness;
    let root: string;
    const clients: LineClient[] = [];

    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'postern-imap-sessions-'));
      h = await startImap({}, {}, kind.modules(root));
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      await h.close();
      await rm(root, { recursive: true, force: true });
    });

    async function session(): Promise<LineClient> {
      const c = await h.loginAlice();
      clients.push(c);
      return c;
    }

    it('announces a new keyword in FLAGS and PERMANENTFLAGS before the FETCH that shows it, to this and other sessions', async () => {
      await h.deliver(message('one'));
      const a = await session();
      const b = await session();
      await a.command('A SELECT INBOX', /^A OK/);
      await b.command('B SELECT INBOX', /^B OK/);
      const mine = await a.command('S STORE 1 +FLAGS ($hello)', /^S /);
      expect(mine[0]).to.match(/^\* FLAGS \(.*\$hello\)$/);
      expect(mine[1]).to.match(/^\* OK \[PERMANENTFLAGS \(.*\$hello \\\*\)\]/);
      expect(mine[2]).to.match(/^\* 1 FETCH \(UID 1 FLAGS \(\$hello \\Recent\)\)$/);
      const theirs = await b.command('N NOOP', /^N /);
      expect(theirs.slice(0, 3).map((l) => l.replace(/\(.*/, ''))).to.deep.equal(['* FLAGS ', '* OK [PERMANENTFLAGS ', '* 1 FETCH ']);
      expect(theirs[0]).to.contain('$hello');
      // Known now: a second STORE of it sends no FLAGS again.
      expect((await a.command('T STORE 1 -FLAGS ($hello)', /^T /))[0]).to.match(/^\* 1 FETCH/);
    });

    it('makes a message copied by another session \\Recent for exactly one session, whatever its flags', async () => {
      await h.deliver(message('seen'));
      const writer = await session();
      await writer.command('C CREATE Other', /^C OK/);
      await writer.command('S SELECT INBOX', /^S OK/);
      await writer.command('F STORE 1 +FLAGS.SILENT (\\Seen)', /^F OK/);
      const reader = await session();
      await reader.command('R SELECT Other', /^R OK/);
      await writer.command('K COPY 1 Other', /^K OK/);
      expect(await reader.command('N NOOP', /^N /)).to.deep.equal(['* 1 EXISTS', '* 1 RECENT', 'N OK NOOP completed']);
      expect((await reader.command('G FETCH 1 FLAGS', /^G /))[0]).to.equal('* 1 FETCH (FLAGS (\\Seen \\Recent))');
      const third = await session();
      expect(await third.command('E SELECT Other', /^E /)).to.include('* 0 RECENT');
    });
  });
}
