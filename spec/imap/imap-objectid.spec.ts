/** OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) over the wire, on the memory and Maildir stores. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ContainerModule } from 'inversify';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { formatInternalDate } from '../../lib/imap/imap-format.js';
import { parseStatusItems } from '../../lib/imap/commands/status.js';
import { imapCapabilities } from '../../lib/imap/imap-capabilities.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { parseSearch, SearchError } from '../../lib/imap/imap-search.js';
import { ProtocolSyntaxError } from '../../lib/protocol/reply-error.js';
import type { LineClient } from '../support/line-client.js';
import { startImap, type ImapHarness } from './imap-harness.js';

const STORES: Array<{ name: string; modules: (root: string) => ContainerModule[] }> = [
  { name: 'memory', modules: () => [memoryModule, imapModule] },
  { name: 'maildir', modules: (root) => [maildirModule(root), imapModule] },
];

const RAW = 'From: a@example.org\r\nTo: alice@example.com\r\nSubject: ids\r\n\r\nHello.\r\n';

/** The day of `date` as RFC 3501 `date` (`5-Nov-2026`). */
function searchDay(date: Date): string {
  return formatInternalDate(date).slice(0, 11).trim();
}

for (const kind of STORES) {
  describe(`imap: OBJECTID and SAVEDATE (${kind.name} store)`, () => {
    let h: ImapHarness;
    let root: string;
    let c: LineClient;

    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'postern-imap-objectid-'));
      h = await startImap({}, {}, kind.modules(root));
      c = await h.loginAlice();
    });
    afterEach(async () => {
      await c.close();
      await h.close();
      await rm(root, { recursive: true, force: true });
    });

    it('advertises OBJECTID and SAVEDATE', async () => {
      const caps = (await c.command('c CAPABILITY', /^c /)).find((l) => l.startsWith('* CAPABILITY '))!.split(' ');
      expect(caps).to.include.members(['OBJECTID', 'SAVEDATE']);
    });

    it('gives CREATE, SELECT, EXAMINE, STATUS and LIST-STATUS the same MAILBOXID, kept by RENAME', async () => {
      const created = await c.command('a CREATE Work', /^a /);
      const m = /^a OK \[MAILBOXID \((F[A-Za-z0-9_-]+)\)\] CREATE completed$/.exec(created[created.length - 1]!);
      expect(m, created.join('|')).to.not.equal(null);
      const id = m![1]!;
      expect(await c.command('b SELECT Work', /^b /)).to.include(`* OK [MAILBOXID (${id})] Ok`);
      expect(await c.command('b2 EXAMINE Work', /^b2 /)).to.include(`* OK [MAILBOXID (${id})] Ok`);
      await c.command('b3 UNSELECT', /^b3 /);
      expect(await c.command('d STATUS Work (MAILBOXID MESSAGES)', /^d /)).to.deep.equal([`* STATUS "Work" (MAILBOXID (${id}) MESSAGES 0)`, 'd OK STATUS completed']);
      expect(await c.command('e RENAME Work Job', /^e /)).to.deep.equal(['e OK RENAME completed']);
      expect(await c.command('f STATUS Job (MAILBOXID)', /^f /)).to.deep.equal([`* STATUS "Job" (MAILBOXID (${id}))`, 'f OK STATUS completed']);
      const listed = await c.command('g LIST "" "Job" RETURN (STATUS (MAILBOXID))', /^g /);
      expect(listed).to.include(`* STATUS "Job" (MAILBOXID (${id}))`);
      const inbox = (await c.command('h STATUS INBOX (MAILBOXID)', /^h /))[0]!;
      expect(inbox).to.match(/^\* STATUS "INBOX" \(MAILBOXID \(F[A-Za-z0-9_-]+\)\)$/);
      expect(inbox).to.not.include(id);
    });

    it('answers EMAILID, THREADID NIL and SAVEDATE, and searches by them', async () => {
      const before = new Date();
      await h.deliver(RAW);
      await c.command('s SELECT INBOX', /^s /);
      const lines = await c.command('f FETCH 1 (EMAILID THREADID SAVEDATE UID)', /^f /);
      const m = /^\* 1 FETCH \(UID 1 EMAILID \((M[0-9a-f]{24})\) THREADID NIL SAVEDATE "([^"]+)"\)$/.exec(lines[0]!);
      expect(m, lines.join('|')).to.not.equal(null);
      if (kind.name === 'memory') expect(m![1]).to.equal('M' + createHash('sha256').update(RAW).digest('hex').slice(0, 24));
      const saved = m![2]!;
      expect(Date.parse(saved.replace(/^ ?(\d+)-(\w+)-(\d+) /, '$2 $1 $3 '))).to.be.within(before.getTime() - 2000, Date.now() + 2000);
      expect(await c.command(`g SEARCH EMAILID ${m![1]}`, /^g /)).to.deep.equal(['* SEARCH 1', 'g OK SEARCH completed']);
      expect(await c.command('h SEARCH EMAILID Mnothere', /^h /)).to.deep.equal(['* SEARCH', 'h OK SEARCH completed']);
      expect(await c.command('i SEARCH THREADID T1', /^i /)).to.deep.equal(['* SEARCH', 'i OK SEARCH completed']);
      expect(await c.command('j SEARCH SAVEDATESUPPORTED', /^j /)).to.deep.equal(['* SEARCH 1', 'j OK SEARCH completed']);
      expect(await c.command(`k SEARCH SAVEDSINCE ${searchDay(before)}`, /^k /)).to.deep.equal(['* SEARCH 1', 'k OK SEARCH completed']);
      expect(await c.command('l SEARCH SAVEDBEFORE 1-Jan-2000', /^l /)).to.deep.equal(['* SEARCH', 'l OK SEARCH completed']);
      expect(await c.command('n SEARCH EMAILID "bad id!"', /^n /)).to.deep.equal(['n BAD Invalid object id']);
    });

    it('gives a copy its own save date and keeps the mailbox of the copy apart', async () => {
      await h.deliver(RAW);
      await c.command('a CREATE Archive', /^a /);
      await c.command('s SELECT INBOX', /^s /);
      await c.command('b COPY 1 Archive', /^b /);
      await c.command('s2 SELECT Archive', /^s2 /);
      const lines = await c.command('f FETCH 1 (EMAILID SAVEDATE)', /^f /);
      expect(lines[0]).to.match(/^\* 1 FETCH \(EMAILID \(M[0-9a-f]{24}\) SAVEDATE "[^"]+"\)$/);
    });
  });
}

describe('imap: OBJECTID and SAVEDATE keys are unknown without object identity', () => {
  it('refuses EMAILID/THREADID/SAVED* in SEARCH, MAILBOXID in STATUS and leaves both capabilities out', () => {
    for (const key of ['EMAILID M1', 'THREADID T1', 'SAVEDON 1-Jan-2020', 'SAVEDATESUPPORTED']) {
      const args = parseCommandText(`a SEARCH ${key}`).args;
      expect(() => parseSearch(args), key).to.throw(SearchError, 'Unknown search key');
      expect(() => parseSearch(args, { objectIds: true }), key).to.not.throw();
    }
    const items = parseCommandText('a STATUS INBOX (MAILBOXID)').args[1];
    expect(() => parseStatusItems(items)).to.throw(ProtocolSyntaxError, 'Unknown status item');
    expect(parseStatusItems(items, true)).to.deep.equal(['MAILBOXID']);
    const base = { allowInsecureAuth: false, maxLiteralSize: 1000, state: 'authenticated' as const, isSecure: true };
    expect(imapCapabilities(base)).to.not.include.oneOf(['OBJECTID', 'SAVEDATE']);
    expect(imapCapabilities({ ...base, hasObjectIds: true })).to.include.members(['OBJECTID', 'SAVEDATE']);
  });
});
