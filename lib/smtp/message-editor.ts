import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BareLfFilter, tooBig } from './commands/data.js';
import { findHeaderEnd, MessageHeader, type HeaderSplit } from './message-header.js';
import { SmtpReplyError } from './smtp-replies.js';

/**
 * Longest header block read before the `onHeader` hooks run: a message whose header has not ended by then is
 * refused with `552 5.3.4` (Exim's `header_maxsize` is the same 1 MiB; Postfix stops at 100 KiB per field). Only
 * applies when an `onHeader` hook is bound, since only then is the header held.
 */
export const MAX_HEADER_OCTETS = 1024 * 1024;

/** What an `onHeader` hook may ask for besides editing the header in place. */
export interface MessageChange {
  /**
   * A stream the body (everything after the header's empty line) is piped through; its output is stored instead.
   * Several hooks' transforms run in binding order. Line breaks in the output are normalized to CRLF and a
   * non-empty output ends with CRLF; the `maxMessageSize` limit applies to the result (`552 5.3.4`). Destroying
   * it with an `SmtpReplyError` refuses the message with that reply. Create a new one per call.
   */
  readonly body?: Duplex;
  /**
   * Reads the whole (transformed) body before the header is written, for decisions that need it (a spam score).
   * The header stays editable until every `scan` resolved; meanwhile the server holds the body in memory
   * (bounded by `maxMessageSize`), and nothing reaches `onData` or the backend. Throwing refuses like any hook.
   */
  readonly scan?: (body: Readable) => Promise<void>;
}

/** One bound `onHeader`, with its envelope already applied. */
export type HeaderHook = (header: MessageHeader) => Promise<MessageChange | void>;

/** Where the editor sends the edited message, and how it reports a refusal. */
export interface EditorOutput {
  /** Writes edited octets onward; resolves false once the delivery failed. */
  write(chunk: Buffer): Promise<boolean>;
  /** Records the refusal or bug that ends the delivery (the first one wins). */
  fail(err: unknown): void;
  /** Resolves when the connection closed (stops waiting for a stuck stream). */
  readonly closed: Promise<void>;
}

interface ScanSink {
  readonly stream: PassThrough;
  readonly done: Promise<void>;
}

/**
 * Applies the `onHeader` hooks to one message on its way from the DATA/BDAT reader to the `onData` hooks and the
 * backend (inside `BodyDelivery`, so every path that delivers a body, LMTP's included, gets the same edits).
 *
 * Streaming: only the header block is held (up to {@link MAX_HEADER_OCTETS}); the body flows through the hooks'
 * transforms with backpressure. The body is held whole only when a hook asks for a `scan`.
 *
 * Lifecycle: {@link write} each chunk, then {@link finish} (writes what is left) or {@link abort}. Failures are
 * reported through `output.fail`; after one, `write` and `finish` do nothing.
 */
export class MessageEditor {
  private head: Buffer[] = [];
  private headLength = 0;
  private header?: MessageHeader;
  private input?: Duplex;
  private piped?: Promise<void>;
  private readonly scans: ScanSink[] = [];
  private held: Buffer[] = [];
  private transformed = false;
  private readonly crlf = new BareLfFilter('normalize');
  private bodyOut = 0;
  private tail = Buffer.alloc(0);
  /** Octets of the edited message so far (held ones included), less the server's own exempt octets. */
  private size: number;
  private failed = false;
  private aborted = false;

  /**
   * @param hooks the bound `onHeader` hooks, in binding order.
   * @param output where the edited message goes.
   * @param maxSize the most octets the edited message may have (0: no limit); beyond it `552 5.3.4`.
   * @param exemptOctets octets the server itself put first (its `Received:` field), not counted against `maxSize`
   *   (the DATA/BDAT reader does not count them either).
   */
  constructor(
    private readonly hooks: readonly HeaderHook[],
    private readonly output: EditorOutput,
    private readonly maxSize: number,
    exemptOctets = 0,
  ) {
    this.size = -exemptOctets;
  }

  /** Takes the next octets of the message. Resolves false once the delivery failed. */
  async write(chunk: Buffer): Promise<boolean> {
    if (this.failed || this.aborted) return false;
    if (this.header) return this.body(chunk);
    this.head.push(chunk);
    this.headLength += chunk.length;
    const data = Buffer.concat(this.head);
    this.head = [data];
    const split = findHeaderEnd(data, false);
    if ((split?.fieldsEnd ?? this.headLength) > MAX_HEADER_OCTETS) return this.headerTooBig();
    return split ? this.startBody(data, split) : true;
  }

  /**
   * The message is complete: ends the transforms, waits for the scans, writes what was held. After it resolves,
   * every octet went to the output (or the delivery failed).
   */
  async finish(): Promise<void> {
    if (this.failed || this.aborted) return;
    if (!this.header) {
      const data = Buffer.concat(this.head);
      this.head = [];
      const split = findHeaderEnd(data, true) as HeaderSplit;
      if (split.fieldsEnd > MAX_HEADER_OCTETS) return void this.headerTooBig();
      if (!(await this.startBody(data, split))) return;
    }
    if (this.input) {
      this.input.end();
      await this.piped;
      if (this.failed) return;
      if (this.bodyOut > 0 && !this.tail.equals(CRLF)) await this.emitBody(CRLF);
    }
    if (this.scans.length === 0) return;
    for (const s of this.scans) s.stream.end();
    await Promise.all(this.scans.map((s) => s.done));
    if (this.failed) return;
    if (!(await this.emitHeader())) return;
    for (const chunk of this.held.splice(0)) if (!(await this.output.write(chunk))) return;
  }

  /** Stops everything (the client vanished, a limit tripped, a consumer failed). Never throws. */
  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    this.held = [];
    this.input?.destroy();
    for (const s of this.scans) s.stream.destroy();
    await Promise.allSettled([this.piped, ...this.scans.map((s) => s.done)]);
  }

  private headerTooBig(): false {
    this.fail(new SmtpReplyError(552, '5.3.4', `Message header exceeds ${MAX_HEADER_OCTETS} octets`));
    return false;
  }

  private fail(err: unknown): void {
    if (this.aborted) return;
    if (!this.failed) this.output.fail(err);
    this.failed = true;
  }

  /** Runs the hooks on the parsed header, sets up transforms and scans, and passes on the start of the body. */
  private async startBody(data: Buffer, split: HeaderSplit): Promise<boolean> {
    this.head = [];
    const header = MessageHeader.parse(data.subarray(0, split.bodyStart), split);
    this.header = header;
    const transforms: Duplex[] = [];
    try {
      for (const hook of this.hooks) {
        const change = await hook(header);
        if (change?.body) transforms.push(change.body);
        if (change?.scan) this.scans.push(this.scanSink(change.scan));
      }
    } catch (err) {
      for (const t of transforms) t.destroy();
      this.fail(err);
      return false;
    }
    if (this.aborted) return false;
    if (this.scans.length === 0 && !(await this.emitHeader())) return false;
    if (transforms.length > 0) this.pipe(transforms, !header.hasSeparator);
    const rest = data.subarray(split.bodyStart);
    return rest.length > 0 ? this.body(rest) : !this.failed;
  }

  /** Body octets from the client: into the first transform, or straight on. */
  private async body(chunk: Buffer): Promise<boolean> {
    const input = this.input;
    if (!input) return this.emitBody(chunk);
    if (!input.write(chunk)) await drained(input, this.piped, this.output.closed);
    return !this.failed;
  }

  /** Chains the transforms; their output goes on through {@link emitBody}, CRLF-normalized. */
  private pipe(transforms: Duplex[], needsSeparator: boolean): void {
    this.transformed = true;
    this.input = transforms[0];
    let separated = !needsSeparator;
    const sink = async (source: AsyncIterable<Buffer | string>): Promise<void> => {
      for await (const out of source) {
        if (this.failed || this.aborted) continue;
        const chunk = typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
        if (chunk.length === 0) continue;
        if (!separated) {
          // The message had no empty line after its header: the transformed body gets one.
          separated = true;
          if (!(await this.emitBody(CRLF, false))) continue;
        }
        await this.emitBody(this.crlf.filter(chunk) ?? chunk);
      }
    };
    this.piped = (pipeline as (...streams: unknown[]) => Promise<void>)(...transforms, sink).catch((err: unknown) => {
      if (!this.aborted) this.fail(err);
    });
  }

  /** Edited body octets: held while a scan runs, else written on. `isBody` false: the added separator line. */
  private async emitBody(chunk: Buffer, isBody = true): Promise<boolean> {
    if (this.failed || this.aborted || !this.counted(chunk)) return false;
    if (this.transformed && isBody) {
      this.bodyOut += chunk.length;
      this.tail = chunk.length >= 2 ? Buffer.from(chunk.subarray(-2)) : Buffer.concat([this.tail, chunk]).subarray(-2);
    }
    if (this.scans.length === 0) return this.output.write(chunk);
    this.held.push(chunk);
    for (const s of this.scans) {
      if (s.stream.destroyed || s.stream.writableEnded) continue;
      if (!s.stream.write(chunk)) await drained(s.stream, s.done, this.output.closed);
    }
    return !this.failed;
  }

  private async emitHeader(): Promise<boolean> {
    const header = this.header as MessageHeader;
    header.freeze();
    const data = header.toBuffer();
    return this.counted(data) && this.output.write(data);
  }

  /** Adds `chunk` to the edited size; false (and a `552 5.3.4` refusal) once it exceeds the limit (RFC 1870 §6.3). */
  private counted(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.maxSize > 0 && this.size > this.maxSize) this.fail(tooBig(this.maxSize));
    return !this.failed;
  }

  private scanSink(scan: (body: Readable) => Promise<void>): ScanSink {
    const stream = new PassThrough({ highWaterMark: 64 * 1024 });
    stream.on('error', () => undefined);
    const done = Promise.resolve()
      .then(() => scan(stream))
      .then(
        // A scan that stops reading early must not hold the others up.
        () => void stream.resume(),
        (err: unknown) => {
          stream.destroy();
          if (!this.aborted) this.fail(err);
        },
      );
    return { stream, done };
  }
}

const CRLF = Buffer.from('\r\n');

/** Waits for `stream` to drain, or for `done` to settle (its reader ended), or for the connection to close. */
function drained(stream: NodeJS.WritableStream & { destroyed?: boolean }, done: Promise<unknown> | undefined, closed: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      stream.removeListener('drain', finish);
      stream.removeListener('close', finish);
      resolve();
    };
    stream.on('drain', finish);
    stream.on('close', finish);
    void done?.then(finish, finish);
    void closed.then(finish);
  });
}

