import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { message } from './mail-store-suite.js';

const run = promisify(execFile);

/** Python's `mailbox.Maildir` (a reader written to the Maildir/Maildir++ conventions, like mutt's): subjects and flags. */
const READER = `
import json, mailbox, sys
def box(md):
    return sorted([[m['Subject'], m.get_flags(), m.get_subdir()] for m in md])
root = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = {'INBOX': box(root)}
for name in root.list_folders():
    out[name] = box(root.get_folder(name))
print(json.dumps(out))
`;

describe('MaildirMailStore layout read by another Maildir implementation (Python mailbox.Maildir)', () => {
  let root: string;
  before(async function () {
    try {
      await run('python3', ['-c', 'import mailbox']);
    } catch {
      this.skip(); // python3 missing: .ci/run installs it
    }
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-interop-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('shows our messages, flags and Maildir++ folders, and we adopt what it delivers', async () => {
    const store = new MaildirMailStore({ root, fsync: false });
    await store.users.add({ username: 'alice', password: 'x', addresses: ['alice@example.org'] });
    await store.deliver('alice@example.org', message('fresh'));
    await store.deliver('alice@example.org', message('read'));
    const view = await store.openUser('alice');
    await view.setFlags('INBOX', [2], ['\\Seen', '\\Answered'], 'add');
    await view.create('Sent');
    await view.append('Sent', message('sent one'), ['\\Seen']);
    const { stdout } = await run('python3', ['-c', READER, join(root, 'mail', 'alice')]);
    expect(JSON.parse(stdout)).to.deep.equal({
      INBOX: [
        ['fresh', '', 'new'],
        ['read', 'RS', 'cur'],
      ],
      Sent: [['sent one', 'S', 'cur']],
    });
    // Python delivers into new/ the Maildir way; we give it the next UID.
    await run('python3', ['-c', 'import mailbox, sys; mailbox.Maildir(sys.argv[1], create=False).add(sys.argv[2].encode())', join(root, 'mail', 'alice'), message('from python').toString()]);
    const messages = await view.messages('INBOX');
    expect(messages.map((m) => m.uid)).to.deep.equal([1, 2, 3]);
    expect((await messages[2]!.raw()).toString()).to.include('Subject: from python');
    await view.release();
    await store.close();
  });
});
