import { ImapFlow } from 'imapflow';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import type { PosternProcess } from '../cli/cli-process.js';
import { ALICE, sendTo, smtpTo, startOnRoot } from './maildir-process-harness.js';

/** Options of {@link crashRounds}. */
export interface CrashOptions {
  readonly root: string;
  readonly tls: string[];
  readonly certs: DevCertificates;
  readonly rounds: number;
  /** Concurrent SMTP senders during the load. */
  readonly senders?: number;
  /** The child is killed after a random delay up to this many ms of load. */
  readonly maxLoadMs?: number;
  readonly log?: (line: string) => void;
}

/** What one check found wrong; empty when the round passed. */
export type CrashProblems = string[];

/** What the rounds learned, for the caller's report. */
export interface CrashSummary {
  readonly rounds: number;
  readonly acked: number;
  readonly expunged: number;
  readonly present: number;
  readonly problems: CrashProblems;
}

const subjectOf = (raw: Buffer): string => /^Subject: (.*)$/m.exec(raw.toString('utf8'))?.[1]?.trim() ?? '';

/**
 * Crash test of the Maildir store: each round loads a child `postern --store maildir:<root>` with concurrent SMTP
 * deliveries plus IMAP flag changes and expunges, SIGKILLs it at a random moment, starts a new child on the same root
 * and checks that every message answered 250 (and not expunged with an OK) is present exactly once, that UIDs are
 * unique and unchanged since the last round, that UIDVALIDITY is unchanged, that the new process cleaned `tmp/` and
 * temporary state files of the dead one, and that the store opened without repair. Stops the last child itself.
 */
export async function crashRounds(options: CrashOptions): Promise<CrashSummary> {
  const { root, tls, certs } = options;
  const log = options.log ?? ((): void => undefined);
  const acked = new Set<string>();
  const maybe = new Set<string>(); // in flight when killed: may or may not be there
  const expunged = new Set<string>();
  const maybeExpunged = new Set<string>();
  const uidOf = new Map<string, number>();
  let uidValidity: number | undefined;
  const problems: CrashProblems = [];
  let child: PosternProcess | undefined;
  let counter = 0;
  try {
    child = await startOnRoot(root, tls);
    for (let round = 1; round <= options.rounds && problems.length === 0; round++) {
      const current: PosternProcess = child;
      let killed = false;
      let firstAck: () => void = () => undefined;
      const loaded = new Promise<void>((resolve) => (firstAck = resolve));
      const sender = async (id: number): Promise<void> => {
        const transport = smtpTo(current.ports.smtp!, certs);
        try {
          while (!killed) {
            const subject = `crash r${round} s${id} n${++counter}`;
            try {
              await sendTo(transport, subject);
              acked.add(subject);
              firstAck();
            } catch {
              maybe.add(subject);
              return;
            }
          }
        } finally {
          transport.close();
        }
      };
      const imapLoad = async (): Promise<void> => {
        const imap = new ImapFlow({
          host: '127.0.0.1',
          port: current.ports.imaps!,
          secure: true,
          tls: { ca: [certs.ca.cert], servername: 'localhost' },
          auth: { user: ALICE.login, pass: ALICE.password },
          logger: false,
        });
        imap.on('error', () => undefined);
        try {
          await imap.connect();
          await imap.mailboxOpen('INBOX');
          while (!killed) {
            const uids = (await imap.search({ all: true }, { uid: true })) || [];
            if (uids.length === 0) {
              await imap.noop();
              continue;
            }
            const uid = uids[Math.floor(Math.random() * uids.length)]!;
            if (Math.random() < 0.7) {
              await imap.messageFlagsAdd(String(uid), [Math.random() < 0.5 ? '\\Seen' : '\\Flagged'], { uid: true });
            } else {
              const message = await imap.fetchOne(String(uid), { envelope: true }, { uid: true });
              const subject = message ? (message.envelope?.subject ?? '') : '';
              maybeExpunged.add(subject);
              // imapflow resolves false (not a rejection) when the connection died mid-command.
              if ((await imap.messageDelete(String(uid), { uid: true })) === true) expunged.add(subject);
            }
          }
        } catch {
          // the server died under us
        } finally {
          imap.close();
        }
      };
      const loads = [...Array.from({ length: options.senders ?? 8 }, (_, i) => sender(i)), imapLoad()];
      // The kill comes at a random moment once the load is flowing (TLS set-up takes a while on a busy machine).
      const ready = setTimeout(firstAck, 20_000);
      await loaded;
      clearTimeout(ready);
      const delay = Math.random() * (options.maxLoadMs ?? 600);
      await new Promise((resolve) => setTimeout(resolve, delay));
      killed = true;
      await current.stop('SIGKILL');
      await Promise.all(loads);
      log(`round ${round}: killed ${delay.toFixed(0)} ms after the first 250; ${acked.size} acked so far, ${expunged.size} expunged`);

      child = await startOnRoot(root, tls);
      // One delivery through the new process opens the folder there: start-up cleaning and lock recovery happen.
      const probe = smtpTo(child.ports.smtp!, certs);
      const probeSubject = `crash r${round} probe`;
      try {
        await sendTo(probe, probeSubject);
        acked.add(probeSubject);
      } catch (err) {
        problems.push(`round ${round}: the restarted process refused a delivery: ${String(err)}`);
      } finally {
        probe.close();
      }
      problems.push(...(await leftovers(root, child.child.pid!)).map((p) => `round ${round}: ${p}`));
      const verified = await verify(round).catch((err: unknown) => [`the store did not open: ${String(err)}`]);
      problems.push(...verified.map((p) => `round ${round}: ${p}`));
    }
  } finally {
    await child?.stop('SIGKILL');
  }
  return { rounds: options.rounds, acked: acked.size, expunged: expunged.size, present: uidOf.size, problems };

  async function verify(round: number): Promise<CrashProblems> {
    const found: CrashProblems = [];
    const reader = new MaildirMailStore({ root });
    try {
      const view = await reader.openUser(ALICE.login);
      const info = await view.info('INBOX');
      if (uidValidity !== undefined && info.uidValidity !== uidValidity) found.push(`UIDVALIDITY changed ${uidValidity} → ${info.uidValidity}`);
      uidValidity = info.uidValidity;
      const messages = await view.messages('INBOX', { peek: true });
      const seen = new Map<string, number>();
      const uids = new Set<number>();
      for (const message of messages) {
        const subject = subjectOf(await message.raw());
        if (seen.has(subject)) found.push(`"${subject}" present twice (uids ${seen.get(subject)} and ${message.uid})`);
        seen.set(subject, message.uid);
        if (uids.has(message.uid)) found.push(`uid ${message.uid} given twice`);
        uids.add(message.uid);
        const before = uidOf.get(subject);
        if (before !== undefined && before !== message.uid) found.push(`"${subject}" changed uid ${before} → ${message.uid}`);
      }
      for (const subject of acked) {
        if (expunged.has(subject) || maybeExpunged.has(subject)) continue;
        if (!seen.has(subject)) found.push(`"${subject}" was answered 250 but is missing`);
      }
      for (const subject of expunged) if (seen.has(subject)) found.push(`"${subject}" was expunged with OK but is back`);
      for (const [subject] of seen) {
        if (!acked.has(subject) && !maybe.has(subject)) found.push(`"${subject}" appeared from nowhere`);
      }
      uidOf.clear();
      for (const [subject, uid] of seen) uidOf.set(subject, uid);
      await view.release();
      log(`round ${round}: ${messages.length} present, UIDVALIDITY ${info.uidValidity}, UIDNEXT ${info.uidNext}, ${found.length} problems`);
    } finally {
      await reader.close();
    }
    return found;
  }
}

/** Files that the process `livePid` should have removed at start-up (tmp/ and temporary state files of others). */
async function leftovers(root: string, livePid: number): Promise<CrashProblems> {
  const inbox = path.join(root, 'mail', ALICE.login);
  const found: CrashProblems = [];
  for (const file of await readdir(path.join(inbox, 'tmp'))) {
    if (!file.includes(`P${livePid}Q`)) found.push(`tmp/${file} of a dead process left behind`);
  }
  for (const file of await readdir(inbox)) {
    const m = /\.(?:tmp|stale)-(\d+)-\d+$/.exec(file);
    if (m !== null && Number(m[1]) !== livePid) found.push(`${file} of a dead process left behind`);
  }
  return found;
}
