/**
 * Sample: hooks that change mail and guard mailboxes, on the full mail server (SMTP, POP3, IMAP).
 *
 * - {@link spamScore} (`SmtpHooks.onHeader` with `scan`): reads the whole body before the header is written,
 *   adds `X-Spam-Score` and, over the threshold, `X-Spam-Flag: YES` and a `[SPAM]` subject tag. A message whose
 *   score reaches `refuseAt` is refused with `550 5.7.1` and never stored.
 * - {@link disclaimer} (`SmtpHooks.onHeader` with a body `Transform`): appends a footer to plain-text messages as
 *   they stream through (the body is never held whole); other content types are left alone.
 * - {@link readOnlyMailboxes} (`ImapHooks.onMailbox`): the named mailboxes may be EXAMINEd and STATUSed, but SELECT
 *   (read-write), APPEND, COPY and MOVE into them get `NO [NOPERM]`.
 * - {@link lockedAccounts} (`ImapHooks.onLogin` and `Pop3Hooks.onLogin`): the listed users are refused after the
 *   Authenticator accepted their password: `NO [AUTHENTICATIONFAILED]` on IMAP, `-ERR [AUTH]` on POP3.
 *
 * ```sh
 * node dist/samples/mail-policy.js            # the six mail listeners on 4025/4465/4110/4995/4143/4993; --any-port
 * swaks --to alice@example.test --server 127.0.0.1:4025 -tls --body 'cheap viagra'  # stored with X-Spam-Score
 * ```
 * Users: `alice`/`alice-pw` (alice@example.test) and the locked `mallory`/`mallory-pw`. Prints one ready line per
 * listener; SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import { Transform, type Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import {
  createMailServerContainer,
  ImapError,
  ImapHooks,
  MailServer,
  Pop3Error,
  Pop3Hooks,
  SmtpHooks,
  SmtpReplyError,
  type MessageHeader,
  type ReadyListener,
  type ServerSecurityOptions,
} from '../lib/index.js';

/** Settings of {@link spamScore}. */
export interface SpamScoreOptions {
  /** Words that add one point each time they occur (case-insensitive). */
  readonly words: readonly string[];
  /** Score from which the message is flagged (`X-Spam-Flag: YES`, `[SPAM]` subject tag). */
  readonly flagAt: number;
  /** Score from which the message is refused with `550 5.7.1`. */
  readonly refuseAt: number;
}

/** Counts `words` in the body; a stand-in for asking rspamd or SpamAssassin (which also need the whole message). */
async function score(body: Readable, words: readonly string[]): Promise<number> {
  const pattern = new RegExp(`\\b(?:${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})\\b`, 'gi');
  let points = 0;
  let carry = '';
  for await (const chunk of body) {
    // Keep the last partial line, so a word split across chunks is still counted once.
    const text = carry + (chunk as Buffer).toString('latin1');
    const cut = text.lastIndexOf('\n') + 1;
    points += (text.slice(0, cut).match(pattern) ?? []).length;
    carry = text.slice(cut);
  }
  return points + (carry.match(pattern) ?? []).length;
}

/** The spam-score hook: `scan` reads the whole body, then the header is edited before anything is stored. */
export function spamScore(options: SpamScoreOptions): SmtpHooks {
  return {
    async onHeader(header: MessageHeader) {
      return {
        scan: async (body: Readable) => {
          const points = await score(body, options.words);
          if (points >= options.refuseAt) throw new SmtpReplyError(550, '5.7.1', `Message refused as spam (score ${points})`);
          header.set('X-Spam-Score', String(points));
          if (points >= options.flagAt) {
            header.set('X-Spam-Flag', 'YES');
            header.set('Subject', `[SPAM] ${header.get('Subject') ?? ''}`);
          }
        },
      };
    },
  };
}

/** The disclaimer hook: a `Transform` appends `text` to plain-text, non-encoded bodies while they stream through. */
export function disclaimer(text: string): SmtpHooks {
  return {
    async onHeader(header: MessageHeader) {
      const type = (header.get('Content-Type') ?? 'text/plain').toLowerCase();
      const encoding = (header.get('Content-Transfer-Encoding') ?? '7bit').toLowerCase();
      // Appending to multipart, HTML or base64/quoted-printable bodies would corrupt them: leave those alone.
      if (!type.startsWith('text/plain') || !['7bit', '8bit'].includes(encoding)) return;
      header.set('X-Disclaimer', 'added');
      let endsWithLineBreak = true;
      return {
        body: new Transform({
          transform(chunk: Buffer, _encoding, done) {
            if (chunk.length > 0) endsWithLineBreak = chunk[chunk.length - 1] === 0x0a;
            done(null, chunk);
          },
          flush: (done) => done(null, Buffer.from(`${endsWithLineBreak ? '' : '\r\n'}-- \r\n${text}\r\n`)),
        }),
      };
    },
  };
}

/** The IMAP mailbox policy: `names` are read-only (EXAMINE and STATUS only). */
export function readOnlyMailboxes(names: readonly string[]): ImapHooks {
  const readOnly = new Set(names);
  return {
    async onMailbox({ mailbox, access }) {
      if (readOnly.has(mailbox) && access !== 'examine' && access !== 'status') {
        throw new ImapError('NO', 'NOPERM', `${mailbox} is read-only: use EXAMINE`);
      }
    },
  };
}

/** The login policy for IMAP and POP3 (each protocol throws its own refusal type, as SMTP hooks do). */
export function lockedAccounts(users: readonly string[]): { imap: ImapHooks; pop3: Pop3Hooks } {
  const locked = new Set(users);
  return {
    imap: {
      async onLogin({ username }) {
        if (locked.has(username)) throw new ImapError('NO', 'AUTHENTICATIONFAILED', 'Account locked, ask your administrator');
      },
    },
    pop3: {
      async onLogin({ username }) {
        if (locked.has(username)) throw new Pop3Error('AUTH', 'account locked, ask your administrator');
      },
    },
  };
}

/** Settings of {@link startPolicyServer}. */
export interface PolicyServerOptions {
  /** Certificate; without it a self-signed one is generated. */
  tls?: ServerSecurityOptions;
  /** Free ports instead of 4025… (the default ports plus 1000). */
  anyPort?: boolean;
}

/**
 * Builds the mail server with the four policies in one module of ours, loaded last. The caller calls `close()`.
 */
export async function startPolicyServer(options: PolicyServerOptions = {}): Promise<{ ready: ReadyListener[]; close(): Promise<void> }> {
  const logins = lockedAccounts(['mallory']);
  const policies = new ContainerModule(({ bind }) => {
    bind(SmtpHooks).toConstantValue(spamScore({ words: ['viagra', 'lottery', 'winner'], flagAt: 3, refuseAt: 10 }));
    bind(SmtpHooks).toConstantValue(disclaimer('Scanned by Postern.'));
    bind(ImapHooks).toConstantValue(readOnlyMailboxes(['Archive']));
    bind(ImapHooks).toConstantValue(logins.imap);
    bind(Pop3Hooks).toConstantValue(logins.pop3);
  });
  const container = createMailServerContainer({
    anyPort: options.anyPort,
    portOffset: 1000,
    tls: options.tls,
    log: { level: 'warn' },
    users: [
      { username: 'alice', password: 'alice-pw', addresses: ['alice@example.test'] },
      { username: 'mallory', password: 'mallory-pw', addresses: ['mallory@example.test'] },
    ],
    modules: [policies],
  });
  const server = new MailServer(container);
  const ready = await server.start();
  const view = await server.store.openUser('alice');
  try {
    await view.create('Archive').catch(() => undefined); // exists already after a restart with a durable store
  } finally {
    await view.release();
  }
  return {
    ready,
    async close() {
      await server.stop();
      await container.unbindAllAsync();
    },
  };
}

async function main(): Promise<void> {
  const running = await startPolicyServer({ anyPort: process.argv.includes('--any-port') });
  for (const l of running.ready) process.stdout.write(`mail-policy: ${l.name} ready on ${l.host}:${l.port}\n`);
  const stop = (): void => void running.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
