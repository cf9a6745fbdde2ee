/** CONDSTORE and QRESYNC (RFC 7162), ENABLE (RFC 5161) and ESEARCH (RFC 4731) over real sockets, on both stores. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import type { ContainerModule } from 'inversify';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import type { LineClient } from '../support/line-client.js';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';

const STORES: Array<{ name: string; modules: (root: string) => ContainerModule[] }> = [
  { name: 'memory', modules: () => [memoryModule, imapModule] },
  { name: 'maildir', modules: (root) => [maildirModule(root), imapModule] },
];

/** The number in `MODSEQ (n)` or `[HIGHESTMODSEQ n]` of a line. */
function modseqOf(line: string | undefined): number {
  const m = /MODSEQ \(?(\d+)/.exec(line ?? '');
  if (!m) throw new Error(`no modseq in ${line}`);
  return Number(m[1]);
}

for (const kind of STORES) {
  describe(`imap CONDSTORE/QRESYNC (${kind.name} store)`, () => {
    let h: ImapHarness;
    let root: string;
    const clients: LineClient[] = [];

    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'postern-condstore-'));
      h = await startImap({}, {}, kind.modules(root));
      for (const n of [1, 2, 3, 4]) await h.deliver(message(`m${n}`));
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

    it('enables CONDSTORE and QRESYNC with ENABLE and reports HIGHESTMODSEQ, MODSEQ in STORE and FETCH', async () => {
      const c = await session();
      expect(await c.command('E ENABLE QRESYNC X-UNKNOWN', /^E /)).to.deep.equal(['* ENABLED CONDSTORE QRESYNC', 'E OK ENABLE completed']);
      expect(await c.command('F ENABLE CONDSTORE', /^F /)).to.deep.equal(['* ENABLED', 'F OK ENABLE completed']);
      const sel = await c.command('S SELECT INBOX', /^S /);
      const highest = modseqOf(sel.find((l) => l.includes('HIGHESTMODSEQ')));
      const stored = await c.command('T STORE 2 +FLAGS (\\Seen)', /^T /);
      expect(stored[0]).to.match(/^\* 2 FETCH \(UID 2 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)$/);
      const m2 = modseqOf(stored[0]);
      expect(m2).to.be.greaterThan(highest);
      expect(await c.command(`G FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`, /^G /)).to.deep.equal([
        `* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (${m2}))`,
        'G OK FETCH completed',
      ]);
      expect(await c.command(`H SEARCH MODSEQ ${m2}`, /^H /)).to.deep.equal([`* SEARCH 2 (MODSEQ ${m2})`, 'H OK SEARCH completed']);
      expect(await c.command('I STATUS INBOX (HIGHESTMODSEQ MESSAGES)', /^I /)).to.deep.equal([
        `* STATUS "INBOX" (HIGHESTMODSEQ ${m2} MESSAGES 4)`,
        'I OK STATUS completed',
      ]);
    });

    it('refuses STORE (UNCHANGEDSINCE) for messages changed since, naming them in [MODIFIED]', async () => {
      const a = await session();
      const b = await session();
      const sel = await a.command('S SELECT INBOX (CONDSTORE)', /^S /);
      const highest = modseqOf(sel.find((l) => l.includes('HIGHESTMODSEQ')));
      await b.command('S SELECT INBOX', /^S OK/);
      await b.command('F STORE 3 +FLAGS.SILENT (\\Flagged)', /^F OK/);
      const lines = await a.command(`U UID STORE 1:4 (UNCHANGEDSINCE ${highest}) +FLAGS.SILENT (\\Answered)`, /^U /);
      expect(lines.pop()).to.equal('U OK [MODIFIED 3] UID STORE completed');
      // Silent, but CONDSTORE still reports each new MODSEQ (RFC 7162 §3.1.3), and the other change arrives too.
      expect(lines.filter((l) => /^\* [124] FETCH \(UID [124] MODSEQ \(\d+\)\)$/.test(l))).to.have.length(3);
      const other = await b.command('X UID STORE 1 (UNCHANGEDSINCE 0) -FLAGS (\\Answered)', /^X /);
      // CONDSTORE comes on with this command: HIGHESTMODSEQ at once (RFC 7162 §3.1), then a's changes, then the refusal.
      expect(other[0]).to.match(/^\* OK \[HIGHESTMODSEQ \d+\]/);
      expect(other.pop()).to.equal('X OK [MODIFIED 1] UID STORE completed');
    });

    it('reports expunges as VANISHED under QRESYNC and resynchronizes with SELECT (QRESYNC …) and UID FETCH VANISHED', async () => {
      const a = await session();
      await a.command('E ENABLE QRESYNC', /^E OK/);
      const sel = await a.command('S SELECT INBOX', /^S /);
      const highest = modseqOf(sel.find((l) => l.includes('HIGHESTMODSEQ')));
      const validity = /UIDVALIDITY (\d+)/.exec(sel.join('\n'))?.[1];
      await a.command('D STORE 2,3 +FLAGS.SILENT (\\Deleted)', /^D OK/);
      const expunged = await a.command('X EXPUNGE', /^X /);
      expect(expunged[0]).to.equal('* VANISHED 2:3');
      expect(expunged.some((l) => / EXPUNGE$/.test(l))).to.equal(false);
      await a.command('T UID STORE 4 +FLAGS.SILENT ($Later)', /^T OK/);
      const b = await session();
      await b.command('E ENABLE QRESYNC', /^E OK/);
      const resync = await b.command(`S SELECT INBOX (QRESYNC (${validity} ${highest} 1:4))`, /^S /);
      expect(resync).to.include('* VANISHED (EARLIER) 2:3');
      expect(resync.filter((l) => / FETCH /.test(l))).to.have.length(1);
      expect(resync.find((l) => / FETCH /.test(l))).to.match(/^\* 2 FETCH \(UID 4 FLAGS \(\$Later\) MODSEQ \(\d+\)\)$/);
      expect(await b.command(`V UID FETCH 1:4 (FLAGS) (CHANGEDSINCE ${highest} VANISHED)`, /^V /)).to.satisfy((l: string[]) => l[0] === '* VANISHED (EARLIER) 2:3' && l.length === 3);
      expect((await b.command('W FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)', /^W /))[0]).to.equal('W BAD VANISHED needs UID FETCH and QRESYNC');
      expect((await b.command(`Q SELECT INBOX (QRESYNC (${validity}))`, /^Q /)).pop()).to.match(/^Q BAD/);
    });

    it('answers SEARCH RETURN (MIN MAX COUNT ALL) with ESEARCH', async () => {
      const c = await session();
      await c.command('S SELECT INBOX', /^S OK/);
      await c.command('F STORE 2,4 +FLAGS.SILENT (\\Seen)', /^F OK/);
      expect(await c.command('A UID SEARCH RETURN (MIN MAX COUNT ALL) SEEN', /^A /)).to.deep.equal([
        '* ESEARCH (TAG "A") UID MIN 2 MAX 4 COUNT 2 ALL 2,4',
        'A OK UID SEARCH completed',
      ]);
      expect(await c.command('B SEARCH RETURN () 1:3', /^B /)).to.deep.equal(['* ESEARCH (TAG "B") ALL 1:3', 'B OK SEARCH completed']);
      expect(await c.command('C SEARCH RETURN (COUNT MIN) DELETED', /^C /)).to.deep.equal(['* ESEARCH (TAG "C") COUNT 0', 'C OK SEARCH completed']);
      // SEARCHRES (RFC 5182 §2.4): SAVE alone answers no ESEARCH; `$` then names the saved messages.
      expect(await c.command('D SEARCH RETURN (SAVE) SEEN', /^D /)).to.deep.equal(['D OK SEARCH completed']);
      expect(await c.command('E FETCH $ (UID)', /^E /)).to.deep.equal(['* 2 FETCH (UID 2)', '* 4 FETCH (UID 4)', 'E OK FETCH completed']);
    });

    it('lets imapflow resynchronize with QRESYNC and fetch changes since a modseq', async () => {
      const flow = new ImapFlow({
        host: '127.0.0.1',
        port: h.securePort,
        secure: true,
        qresync: true,
        auth: { user: ALICE.username, pass: ALICE.password },
        tls: { ca: [h.certs.ca.cert] },
        logger: false,
      });
      flow.on('error', () => undefined);
      await flow.connect();
      try {
        expect(flow.enabled.has('QRESYNC')).to.equal(true);
        const box = await flow.mailboxOpen('INBOX');
        const since = box.highestModseq ?? 0n;
        expect(Number(since)).to.be.greaterThan(0);
        await flow.messageFlagsAdd('3', ['\\Flagged']);
        const changed: number[] = [];
        for await (const m of flow.fetch('1:*', { flags: true }, { changedSince: since })) changed.push(m.seq);
        expect(changed).to.deep.equal([3]);
      } finally {
        await flow.logout();
      }
    });
  });
}
