import { PassThrough, type Readable } from 'node:stream';
import { MessageEditor, type HeaderHook } from './message-editor.js';

/** Someone who reads a message body: a hook's `onData` or the backend's `data`. */
export type BodyConsumer = (body: Readable) => Promise<void>;

/**
 * A final consumer that takes the whole message at once (the backend's `dataChunks`): `chunks` in order are the
 * message, `size` their total length. No stream is made for it when no hook reads or edits the body.
 */
export interface WholeBodyConsumer {
  readonly whole: (chunks: Buffer[], size: number) => Promise<void>;
}

/** The resolved `write` of a collected chunk (no promise per chunk). */
const WRITTEN = true;

/** Why a body was abandoned before it reached its consumers in full. */
export class BodyAbortedError extends Error {
  override readonly name = 'BodyAbortedError';
}

/** The `onHeader` hooks of one message and the size limit of the edited message (see {@link MessageEditor}). */
export interface BodyEdits {
  readonly hooks: readonly HeaderHook[];
  /** `maxMessageSize` (0: none): the edited message is held to it too. */
  readonly maxSize: number;
  /** Octets written first by the server itself (its `Received:` field), not counted against `maxSize`. */
  readonly exemptOctets: number;
}

interface Sink {
  readonly stream: PassThrough;
  /** Settles when the consumer did; never rejects (the error lands in `failure`). */
  readonly result: Promise<void>;
  settled: boolean;
}

/**
 * Feeds one message body to several consumers with backpressure (the slowest reader sets the pace, so
 * memory stays bounded by the streams' high-water marks). The hooks get the body alongside the final
 * consumer (the backend), whose stream only ends once every hook has resolved: a hook's refusal thus
 * destroys the backend's stream with an error, and nothing is stored.
 *
 * When `onHeader` hooks are bound, the octets first pass a {@link MessageEditor} that applies their header edits
 * and body transforms: the `onData` hooks and the backend see the edited message, and a refusal there ends the
 * delivery the same way.
 *
 * Lifecycle: `write()` each chunk, then exactly one of `finish()` or `abort()`.
 */
export class BodyDelivery {
  private readonly hooks: Sink[];
  private readonly final?: Sink;
  private readonly editor?: MessageEditor;
  private failure?: unknown;
  /** Collect mode (a {@link WholeBodyConsumer} and nothing else reads the body): the chunks so far, no streams. */
  private readonly collector?: (chunks: Buffer[], size: number) => Promise<void>;
  private chunks: Buffer[] = [];
  private size = 0;
  /** Collect mode: abort() ran; later writes are dropped and finish() stores nothing. */
  private aborted = false;

  /**
   * @param hooks readers that may refuse the message.
   * @param final the reader that stores it: a stream reader, or one that takes the whole message (then, when no
   *   hook reads or edits the body, the chunks are only collected: no stream, no promise per chunk).
   * @param closed resolves when the connection closed (stops waiting for a stuck reader).
   * @param edits the `onHeader` hooks that may change the message before the readers see it.
   */
  constructor(
    hooks: readonly BodyConsumer[],
    final: BodyConsumer | WholeBodyConsumer,
    private readonly closed: Promise<void>,
    edits?: BodyEdits,
  ) {
    const editing = edits !== undefined && edits.hooks.length > 0;
    if (typeof final !== 'function' && hooks.length === 0 && !editing) {
      this.hooks = [];
      this.collector = final.whole;
      return;
    }
    this.hooks = hooks.map((h) => this.sink(h));
    this.final = this.sink(typeof final === 'function' ? final : streamToWhole(final));
    if (editing) {
      const output = { write: (chunk: Buffer) => this.fanOut(chunk), fail: (err: unknown) => void (this.failure ??= err), closed };
      this.editor = new MessageEditor(edits.hooks, output, edits.maxSize, edits.exemptOctets);
    }
  }

  /** The first error a consumer rejected with, if any (then stop writing and call `abort`). */
  get error(): unknown {
    return this.failure;
  }

  /**
   * Writes a chunk to every consumer still reading (through the editor, if any). Resolves false when a consumer
   * failed. In collect mode the chunk is kept (the caller must not change it) and `true` comes back at once.
   */
  write(chunk: Buffer): boolean | Promise<boolean> {
    if (this.failure !== undefined) return false;
    if (this.collector) {
      if (this.aborted) return false;
      this.chunks.push(chunk);
      this.size += chunk.length;
      return WRITTEN;
    }
    return this.editor ? this.editor.write(chunk) : this.fanOut(chunk);
  }

  private async fanOut(chunk: Buffer): Promise<boolean> {
    if (this.failure !== undefined) return false;
    for (const s of this.hooks) {
      if (s.settled) continue;
      if (!s.stream.write(chunk)) await this.drained(s);
      if (this.failure !== undefined) return false;
    }
    const f = this.final!;
    if (!f.settled && !f.stream.write(chunk)) await this.drained(f);
    return this.failure === undefined;
  }

  /**
   * Ends the hooks' streams, waits for every hook, then ends the backend's stream and waits for it.
   * @throws the first error a consumer rejected with (the backend's stream is destroyed first, so it stores nothing).
   */
  finish(): Promise<void> {
    return this.collector ? this.finishCollected(this.collector) : this.finishStreams();
  }

  /** Collect mode's {@link finish}: the consumer's own promise, with no async frame around it (issue 15). */
  private finishCollected(collector: (chunks: Buffer[], size: number) => Promise<void>): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.aborted) return Promise.reject(new BodyAbortedError('message aborted'));
    const chunks = this.chunks;
    this.chunks = [];
    let storing: Promise<void>;
    try {
      storing = collector(chunks, this.size);
    } catch (err) {
      storing = Promise.reject(err);
    }
    // The consumer's refusal becomes the delivery's error (read by `error`), then passes on.
    return storing.catch((err: unknown) => {
      this.failure ??= err;
      throw err;
    });
  }

  private async finishStreams(): Promise<void> {
    if (this.failure === undefined) await this.editor?.finish();
    if (this.failure === undefined) {
      for (const h of this.hooks) if (!h.settled) h.stream.end();
      await Promise.allSettled(this.hooks.map((h) => h.result));
    }
    if (this.failure !== undefined) {
      await this.abort();
      throw this.failure;
    }
    this.final!.stream.end();
    await this.final!.result;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Destroys every stream with a {@link BodyAbortedError} and waits until every consumer has settled. Never throws. */
  async abort(): Promise<void> {
    if (this.collector) {
      this.aborted = true;
      this.chunks = []; // nothing was handed to the consumer: nothing is stored
      return;
    }
    const editing = this.editor?.abort(); // its streams are destroyed at once; settled below
    const sinks = [...this.hooks, this.final!];
    for (const s of sinks) {
      if (!s.stream.destroyed) s.stream.destroy(new BodyAbortedError('message aborted'));
    }
    await editing;
    await Promise.allSettled(sinks.map((s) => s.result));
  }

  private sink(consumer: BodyConsumer): Sink {
    const stream = new PassThrough({ highWaterMark: 64 * 1024 });
    // A consumer that never reads must not turn a destroyed stream's error into an unhandled 'error' event.
    stream.on('error', () => undefined);
    const sink: Sink = {
      stream,
      settled: false,
      result: Promise.resolve()
        .then(() => consumer(stream))
        .then(
          () => {
            sink.settled = true;
          },
          (err: unknown) => {
            sink.settled = true;
            if (!(err instanceof BodyAbortedError)) this.failure ??= err;
          },
        ),
    };
    return sink;
  }

  private drained(s: Sink): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        s.stream.off('drain', done);
        s.stream.off('close', done);
        resolve();
      };
      s.stream.on('drain', done);
      s.stream.on('close', done);
      void s.result.then(done, done);
      void this.closed.then(done);
    });
  }
}

/** A whole-message consumer fed from a stream (when hooks read or edit the body, the backend still gets a stream's worth). */
function streamToWhole(final: WholeBodyConsumer): BodyConsumer {
  return async (body) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    await final.whole(chunks, size);
  };
}
