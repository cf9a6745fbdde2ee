import type { Readable } from 'node:stream';
import { canReadPrefix, isMailStoreError, isStreamable } from '../contracts/mail-store.js';
import { dispatch, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { FaultStage } from '../protocol/faults.js';
import { POP3_COMMANDS } from './pop3-commands.js';
import type { MaildropEntry } from './pop3-maildrop.js';
import { prefixThenRest, WIRE_CHUNK_OCTETS, wireChunks, wireChunksOf } from './pop3-message.js';
import { END_OF_MULTILINE, errLine, okLine, Pop3Error } from './pop3-replies.js';
import { Pop3SessionState } from './pop3-session-state.js';
import type { Pop3State } from './pop3-state.js';

export type { Pop3Context, Pop3Credentials } from './pop3-session-state.js';

/** RETR streams messages from this size on (when the store can): below it one read of the whole file is cheaper. */
const STREAM_FROM_OCTETS = 256 * 1024;

/** Verbs whose arguments are secrets: logged as `[redacted]`. */
const SECRET_VERBS = new Set(['PASS', 'APOP', 'AUTH']);

/**
 * One POP3 session (RFC 1939), on the STLS port or the implicit-TLS port alike.
 *
 * Created by `Pop3Server.handle()`, which awaits {@link run}. The base class {@link Pop3SessionState} holds the state
 * that handlers read and change, the login, QUIT and the release of the maildrop; this class is the wire side: it
 * reads command lines and dispatches them, answers guard failures and the engine's notices, and sends messages.
 */
export class Pop3Connection extends Pop3SessionState implements DispatchTarget<Pop3State> {
  private streaming = false;

  protected async onLine(line: Buffer): Promise<void> {
    const text = line.toString('utf8');
    const sp = text.indexOf(' ');
    const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
    const rest = sp === -1 ? '' : text.slice(sp + 1);
    this.log.debug('C: ' + (SECRET_VERBS.has(verb) ? `${verb} [redacted]` : text.slice(0, 200)));
    // RFC 1939 §7: a password may contain spaces, so PASS keeps its argument verbatim.
    await dispatch(POP3_COMMANDS, this, verb, verb === 'PASS' ? rest : rest.trim());
  }

  /** Fault stages of POP3 commands: the login steps carry the user name for a rule's pattern. */
  protected override faultStage(verb: string, args: string): { stage: FaultStage; subjects?: string[] } | undefined {
    switch (verb) {
      case 'STLS':
        return { stage: 'starttls' };
      case 'USER':
      case 'APOP':
        return { stage: 'login', subjects: [args.split(' ')[0] ?? ''] };
      case 'PASS':
        return { stage: 'login', subjects: this.pendingUser ? [this.pendingUser] : [] };
      case 'AUTH':
        return { stage: 'login' };
      case 'RETR':
      case 'TOP':
        return { stage: 'fetch' };
      default:
        return undefined;
    }
  }

  /** Replies to a guard failure of `dispatch()`. */
  refuse(failure: GuardFailure, _verb: string, detail?: string): void {
    switch (failure) {
      case 'unknown':
        return this.send(errLine(undefined, 'unknown command'));
      case 'state':
        return this.send(errLine(undefined, 'command not valid in this state'));
      case 'syntax':
        return this.send(errLine(undefined, detail ?? 'syntax error'));
      case 'tls':
        // RFC 2595 §4 / RFC 8314: no plaintext credentials; RFC 3206 §4 [AUTH].
        return this.send(errLine('AUTH', 'TLS required: use STLS first'));
      case 'auth':
        return this.send(errLine('AUTH', 'not authenticated'));
      case 'bug':
        return this.send(errLine('SYS/TEMP', 'internal server error'));
    }
  }

  protected async onLineTooLong(fatal: boolean): Promise<void> {
    this.send(errLine(undefined, fatal ? 'line too long, closing' : 'line too long'));
  }

  protected override async onBareLf(): Promise<void> {
    // RFC 1939 §3: commands are terminated by CRLF.
    this.send(errLine(undefined, 'bare LF not allowed, lines end with CRLF'));
  }

  protected override isPastPreAuth(): boolean {
    return this.isAuthenticated;
  }

  protected override async onPreAuthTimeout(): Promise<void> {
    this.send(errLine(undefined, 'autologout: not logged in in time'));
    await this.end('idle-timeout');
  }

  /** An HTTP request line ends the session (no UPDATE state: nothing marked deleted is removed). */
  protected override httpRequestGoodbye(): string {
    return errLine(undefined, 'HTTP request refused, closing');
  }

  protected async onTooManyErrors(): Promise<void> {
    this.send(errLine(undefined, 'too many errors, closing'));
  }

  protected async onIdleTimeout(): Promise<void> {
    // RFC 1939 §3: the autologout timer closes the connection without entering the UPDATE state.
    this.send(errLine(undefined, 'autologout: idle for too long'));
    await this.end('idle-timeout');
  }

  protected override async closed(): Promise<void> {
    await this.release();
  }

  /**
   * Sends `+OK`, the message (or its header plus `bodyLines` lines for TOP) byte-stuffed in chunks, each
   * written before the next is built (waiting for drain), then the terminator (RFC 1939 §7 RETR/TOP).
   * @throws Pop3Error when the message vanished from the store meanwhile (nothing sent then).
   */
  async sendMessage(entry: MaildropEntry, bodyLines?: number): Promise<void> {
    const removed = (err: unknown): never => {
      if (isMailStoreError(err, 'NO_SUCH_MESSAGE')) throw new Pop3Error(undefined, 'message was removed by another session');
      throw err;
    };
    // RETR or TOP of a large message from a store that can stream: it is never held whole in memory, and TOP reads
    // no further than its lines (from one prefix read when the store offers it). Small messages are read whole,
    // which costs fewer system calls than a stream.
    const message = entry.message;
    const large = entry.size >= STREAM_FROM_OCTETS && isStreamable(message);
    let stream: Readable | undefined;
    let chunks: AsyncIterable<Buffer> | Iterable<Buffer>;
    if (large && bodyLines !== undefined && canReadPrefix(message)) {
      const prefix = await message.readPrefix(WIRE_CHUNK_OCTETS).catch(removed);
      chunks = wireChunksOf(prefixThenRest(prefix, WIRE_CHUNK_OCTETS, () => message.openStream()), bodyLines);
    } else {
      stream = large ? await message.openStream().catch(removed) : undefined;
      chunks = stream !== undefined ? wireChunksOf(stream, bodyLines) : wireChunks(await message.raw().catch(removed), bodyLines);
    }
    this.send(okLine(bodyLines === undefined ? `${entry.size} octets` : 'top of message follows'));
    this.streaming = true;
    try {
      // Each chunk is flushed before the next is queued (bounded memory); the last leaves with the terminator.
      let queued = false;
      for await (const chunk of chunks) {
        if (queued) {
          await this.flush();
          if (this.isEnding) return;
        }
        this.send(chunk);
        queued = true;
      }
    } finally {
      this.streaming = false;
      stream?.destroy();
    }
    this.send(END_OF_MULTILINE);
  }

  /**
   * Server shutdown: `-ERR [SYS/TEMP]` and close, no deletions applied. A message being streamed is cut
   * (the missing terminator tells the client the reply is incomplete) rather than interleaved with the notice.
   */
  async shutdown(): Promise<void> {
    if (!this.streaming && !this.isEnding) this.send(errLine('SYS/TEMP', 'server shutting down'));
    await this.end('server-shutdown');
  }
}
