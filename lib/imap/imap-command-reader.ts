import type { CloseReason } from '../core/connection.js';
import { debugEnabled, type Logger } from '../log/logger.js';
import { isHttpMethod } from '../protocol/http-request.js';
import type { LineReader } from '../protocol/line-reader.js';
import { commandSizeLimit, IMAP_LITERAL_MINUS_MAX, literalLimit, type ImapSettings } from './imap-options.js';
import { announcedLiteral, ImapCommandAssembler, type AssemblerResult, type ImapCommand, type ImapParseError } from './imap-parser.js';
import { taggedLine, untaggedLine } from './imap-replies.js';

/** A literal the assembler announced and that has not been read yet. */
export type LiteralRequest = Extract<AssemblerResult, { kind: 'literal' }>;

/** What {@link ImapCommandReader} needs from its session (all of it is public on `TextSession`, plus two hooks). */
export interface CommandReaderHost {
  readonly reader: LineReader;
  readonly log: Logger;
  send(data: string | Buffer): void;
  flush(): Promise<void>;
  /** Counts a client error against the budget; the session ends itself when it is spent. */
  countError(): Promise<boolean>;
  end(reason?: CloseReason): Promise<void>;
  /**
   * Called before the `+` of a synchronizing literal: when the command would be refused anyway (unknown verb,
   * wrong state, LOGIN before TLS, APPEND into a missing mailbox), sends the refusal and resolves true, so the
   * client never sends the literal (RFC 3501 §7.5).
   */
  refuseBeforeLiteral(lit: LiteralRequest): Promise<boolean>;
  /** A continuation line whose CRLF never came: say BYE and close. */
  onRunawayLine(): Promise<void>;
  /** An HTTP request line (tag `GET`, `POST`…): says BYE and closes (`TextSession.refuseHttpRequest`). */
  refuseHttpRequest(method: string): Promise<void>;
}

/** Commands whose arguments are secrets: logged as `[redacted]`. */
const SECRET_COMMANDS = new Set(['LOGIN', 'AUTHENTICATE']);

/**
 * Reads one whole IMAP command (RFC 3501 §2.2, §7.5): its first line, each literal it announces and the lines
 * that follow them. Owned by one `ImapConnection`, which calls {@link read} with each line the engine frames.
 *
 * Literal limits are checked before the `+` continuation: a synchronizing literal that is too big is answered
 * `NO [TOOBIG]` (APPEND) or `BAD` and never read. A non-synchronizing literal (RFC 7888) that is too big — over
 * the APPEND or line limit with LITERAL+, over 4096 octets with LITERAL- (`BAD [TOOBIG]`, RFC 7888 §5) — or announced on a line that is otherwise refused, is already on its way: the reader answers and has
 * the engine drop its octets and the rest of the command unread, or — when the count is unknown (`{5 +}`,
 * beyond 32 bits) or above the APPEND limit — sends `* BYE` and closes. Refused literal data is never read as
 * commands. Every refusal is sent here; the session only runs complete commands.
 */
export class ImapCommandReader {
  // The reader checks literal and command sizes itself with the per-command limits of `imap-options.ts`, so the
  // assembler's own size limits are only the 32-bit literal bound of RFC 3501 §9 (depth and values stay).
  private readonly assembler = new ImapCommandAssembler({
    maxLiteralSize: 0xffffffff,
    maxNonSyncLiteralSize: 0xffffffff,
    maxCommandSize: Number.MAX_SAFE_INTEGER,
  });

  constructor(
    private readonly host: CommandReaderHost,
    private readonly settings: ImapSettings,
  ) {}

  /** Forgets a half-assembled command (after STARTTLS: nothing read in plaintext carries over). */
  reset(): void {
    this.assembler.reset();
  }

  /**
   * Assembles the command that starts with `line`. Resolves the complete command, or undefined when it was
   * refused (the reply is sent) or the peer went away.
   */
  async read(line: Buffer): Promise<ImapCommand | undefined> {
    const host = this.host;
    let result: AssemblerResult = this.assembler.pushLine(line);
    let total = line.length + 2;
    this.logLine(line, result);
    for (;;) {
      if (result.kind === 'complete') return result.command;
      if (result.kind === 'error') {
        await this.parseError(result.error);
        return undefined;
      }
      if (result.kind === 'more') throw new Error('assembler wants a line after pushLine');
      total += result.size;
      const data = await this.readLiteral(result, total);
      if (data === undefined) return undefined;
      result = this.assembler.pushLiteral(data);
      const next = await host.reader.readLine();
      if (next.kind === 'closed') return undefined;
      if (next.kind === 'runaway') {
        this.assembler.reset();
        await host.onRunawayLine();
        return undefined;
      }
      if (next.kind === 'too-long' || next.kind === 'bare-lf') {
        this.assembler.reset();
        host.send(taggedLine(tagOf(line), 'BAD', undefined, next.kind === 'too-long' ? 'Line too long' : 'Bare LF not allowed, lines end with CRLF'));
        await host.countError();
        return undefined;
      }
      host.log.debug('C: [continuation]', { octets: next.line.length });
      total += next.line.length + 2;
      result = this.assembler.pushLine(next.line);
    }
  }

  private logLine(line: Buffer, result: AssemblerResult): void {
    const log = this.host.log;
    if (!debugEnabled(log)) return;
    const command = result.kind === 'complete' ? result.command.command : result.kind === 'literal' ? result.command : undefined;
    if (command === undefined) log.debug('C: [unparsable line]', { octets: line.length });
    else if (SECRET_COMMANDS.has(command)) log.debug(`C: ${tagOf(line)} ${command} [redacted]`);
    else log.debug('C: ' + line.toString('utf8').slice(0, 200));
  }

  /**
   * Checks an announced literal against the limits, sends `+ Ready for literal data` for a synchronizing one and
   * reads its octets. Resolves undefined when it was refused (reply sent, assembler reset) or the peer vanished.
   */
  private async readLiteral(lit: LiteralRequest, total: number): Promise<Buffer | undefined> {
    const host = this.host;
    if (!lit.sync && !this.settings.literalPlus && lit.size > IMAP_LITERAL_MINUS_MAX) {
      // RFC 7888 §5 (LITERAL-): a larger non-synchronizing literal is refused with a tagged BAD [TOOBIG]; its
      // octets are already on their way, so they are dropped with the rest of the command (or the session ends).
      this.assembler.reset();
      host.log.warn('non-synchronizing literal over the LITERAL- limit', { command: lit.command, size: lit.size });
      host.send(taggedLine(lit.tag, 'BAD', 'TOOBIG', `Non-synchronizing literal larger than ${IMAP_LITERAL_MINUS_MAX} octets, use {N}`));
      await this.dropNonSync(lit.size);
      return undefined;
    }
    const limit = literalLimit(lit.command, this.settings);
    if (lit.size > limit || total > commandSizeLimit(lit.command, this.settings)) {
      this.assembler.reset();
      host.log.warn('literal too big', { command: lit.command, size: lit.size });
      if (lit.command === 'APPEND') host.send(taggedLine(lit.tag, 'NO', 'TOOBIG', 'Message too big'));
      else host.send(taggedLine(lit.tag, 'BAD', 'TOOBIG', 'Literal too big'));
      if (!lit.sync) await this.dropNonSync(lit.size);
      else await host.countError();
      return undefined;
    }
    if (lit.sync) {
      if (await host.refuseBeforeLiteral(lit)) {
        this.assembler.reset();
        return undefined;
      }
      host.send('+ Ready for literal data\r\n');
      await host.flush();
    }
    const data = await host.reader.readExactly(lit.size);
    if (data === undefined) this.assembler.reset();
    return data;
  }

  /**
   * A refused non-synchronizing literal is on its way (RFC 7888 §4): its octets and the rest of the command are
   * dropped unread when the count is known and within {@link ImapCommandReader.droppableOctets}; otherwise the
   * session says BYE and closes. Either way they are never read as commands.
   */
  private async dropNonSync(size: number): Promise<void> {
    if (size <= this.droppableOctets) {
      this.host.log.warn('dropping a refused non-synchronizing literal', { size });
      this.host.reader.dropCommandRest(size);
      await this.host.countError();
      return;
    }
    await this.byeNonSync();
  }

  /**
   * Most octets of refused literal data the session drops to stay in step rather than closing: the APPEND limit,
   * so a client that announced a message it may send gets its answer and can go on.
   */
  get droppableOctets(): number {
    return this.settings.maxLiteralSize;
  }

  /**
   * What follows a line the engine dropped (over-long, or ended by a bare LF): the octets of a `{N+}` literal
   * announced at its end, `'end'` when that count is unknown or too big to drop, else nothing (a synchronizing
   * literal is only sent after a `+` that never comes).
   */
  octetsAfterDroppedLine(tail: Buffer): number | 'end' | undefined {
    const lit = announcedLiteral(tail);
    if (!lit || lit.sync) return undefined;
    if (lit.size <= this.droppableOctets) return lit.size;
    this.host.log.warn('a dropped line announced a literal that cannot be skipped, closing', {});
    return 'end';
  }

  /** A non-synchronizing literal is on its way and will not be read: say goodbye (RFC 7888 §4 allows BYE). */
  private async byeNonSync(): Promise<void> {
    this.host.log.warn('refused a non-synchronizing literal, closing', {});
    this.host.send(untaggedLine('BYE', undefined, 'Refused literal cannot be skipped, closing'));
    await this.host.end('closed');
  }

  private async parseError(error: ImapParseError): Promise<void> {
    const host = this.host;
    // `GET /a(b) HTTP/1.1` fails to parse; its tag must not be echoed either (ALPACA): the session ends there.
    if (error.tag !== undefined && isHttpMethod(error.tag) && error.nonSyncLiteral === undefined) return host.refuseHttpRequest(error.tag);
    if (error.tag === undefined) host.send(untaggedLine('BAD', undefined, error.message));
    else host.send(taggedLine(error.tag, 'BAD', error.reason === 'too-big' ? 'TOOBIG' : undefined, error.message));
    if (error.nonSyncLiteral !== undefined) return this.dropNonSync(error.nonSyncLiteral);
    await host.countError();
  }
}

/** The tag of a raw command line, for replies to lines the assembler could not finish. */
function tagOf(line: Buffer): string {
  const sp = line.indexOf(0x20);
  return line.subarray(0, sp < 0 ? line.length : sp).toString('latin1');
}
