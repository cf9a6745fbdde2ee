import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCachedStructure, type StoredMessage } from '../../lib/contracts/mail-store.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { FOLDER_CACHE_FILE } from '../../lib/backends/maildir/folder-cache.js';
import { buildFetchItems, parseFetchAttributes } from '../../lib/imap/imap-fetch.js';
import { serializeImapItems } from '../../lib/imap/imap-format.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { NESTED, crlf } from '../imap/imap-messages.js';
import { Maildrop } from '../../lib/pop3/pop3-maildrop.js';
import { wireSize } from '../../lib/pop3/pop3-message.js';

/** What `FETCH 1 <atts>` answers for one message, built by the IMAP layer. */
async function fetch(message: StoredMessage, atts: string): Promise<string> {
  const request = parseFetchAttributes(parseCommandText(`t FETCH 1 ${atts}`).args[1]);
  return serializeImapItems(await buildFetchItems(message, request)).toString('utf8');
}

describe('MaildirMailStore index cache', () => {
  let root: string;
  const inbox = (): string => join(root, 'mail', 'alice');
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-cache-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function withAlice(): Promise<MaildirMailStore> {
    const store = new MaildirMailStore({ root, fsync: false });
    await store.users.add({ username: 'alice', password: 'x', addresses: ['alice@example.org'] });
    return store;
  }

  /** Overwrites the only message file in place (same name): anything read from the file afterwards would change. */
  async function scribble(): Promise<void> {
    for (const dir of ['new', 'cur']) {
      for (const file of await readdir(join(inbox(), dir))) await writeFile(join(inbox(), dir, file), crlf('Subject: scribbled', '', 'not the message'));
    }
  }

  it('answers FETCH ENVELOPE BODYSTRUCTURE from the structure cached at delivery, also after a restart, without the file', async () => {
    const first = await withAlice();
    const raw = NESTED;
    await first.deliver('alice@example.org', raw);
    const view = await first.openUser('alice');
    const [original] = await view.messages('INBOX');
    expect(hasCachedStructure(original!)).to.equal(true);
    const expected = await fetch({ ...original!, structure: undefined, raw: async () => raw } as unknown as StoredMessage, '(ENVELOPE BODYSTRUCTURE)');
    await view.release();
    await first.close();
    expect((await readFile(join(inbox(), FOLDER_CACHE_FILE), 'utf8')).split('\n')).to.have.length(2);
    await scribble();

    const second = await withAlice();
    const again = await second.openUser('alice');
    const [message] = await again.messages('INBOX');
    expect(await fetch(message!, '(UID RFC822.SIZE FLAGS ENVELOPE BODYSTRUCTURE)')).to.equal(`UID 1 RFC822.SIZE ${raw.length} FLAGS () ${expected}`);
    // A section needs the octets: that one does read the (scribbled) file.
    expect(await fetch(message!, 'BODY.PEEK[HEADER.FIELDS (SUBJECT)]')).to.include('scribbled');
    await again.release();
  });

  it('parses an uncached message once on first access and keeps it for the next', async () => {
    const store = await withAlice();
    await store.deliver('alice@example.org', crlf('Subject: first', '', 'body'));
    await store.close();
    await rm(join(inbox(), FOLDER_CACHE_FILE));
    const second = await withAlice();
    const view = await second.openUser('alice');
    const [message] = await view.messages('INBOX');
    expect(await fetch(message!, 'ENVELOPE')).to.include('"first"');
    await scribble();
    expect(await fetch(message!, 'ENVELOPE')).to.include('"first"');
    await second.close();
    expect(await readFile(join(inbox(), FOLDER_CACHE_FILE), 'utf8')).to.include('"first"');
    await view.release();
  });

  it('gives POP3 the CRLF size of each message from the cache: LIST and STAT read no message file', async () => {
    const store = await withAlice();
    const bareLf = Buffer.from('Subject: bare\nFrom: a@example.org\n\nline one\nlast line without end');
    await store.deliver('alice@example.org', bareLf);
    await store.deliver('alice@example.org', crlf('Subject: fine', '', 'body'));
    await scribbleAll();
    const view = await store.openUser('alice');
    const drop = await Maildrop.snapshot(view);
    expect(drop.live.map((e) => e.size)).to.deep.equal([wireSize(bareLf), wireSize(crlf('Subject: fine', '', 'body'))]);
    await view.release();
  });

  async function scribbleAll(): Promise<void> {
    for (const dir of ['new', 'cur']) {
      for (const file of await readdir(join(inbox(), dir))) await writeFile(join(inbox(), dir, file), 'x');
    }
  }
});
