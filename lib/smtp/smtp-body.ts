import { PassThrough, type Readable } from 'node:stream';
import { MessageEditor, type HeaderHook } from './message-editor.js';

/** Someone who reads a message body: a hook's `onData` or the backend's `data`. */
export type BodyConsumer = (body: Readable) => Promise<void>;

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
  private readonly final: Sink;
  private readonly editor?: MessageEditor;
  private failure?: unknown;

  /**
   * @param hooks readers that may refuse the message.
   * @param final the reader that stores it.
   * @param closed resolves when the connection closed (stops waiting for a stuck reader).
   * @param edits the `onHeader` hooks that may change the message before the readers see it.
   */
  constructor(
    hooks: readonly BodyConsumer[],
    final: BodyConsumer,
    private readonly closed: Promise<void>,
    edits?: BodyEdits,
  ) {
    this.hooks = hooks.map((h) => this.sink(h));
    this.final = this.sink(final);
    if (edits && edits.hooks.length > 0) {
      const output = { write: (chunk: Buffer) => this.fanOut(chunk), fail: (err: unknown) => void (this.failure ??= err), closed };
      this.editor = new MessageEditor(edits.hooks, output, edits.maxSize, edits.exemptOctets);
    }
  }

  /** The first error a consumer rejected with, if any (then stop writing and call `abort`). */
  get error(): unknown {
    return this.failure;
  }

  /** Writes a chunk to every consumer still reading (through the editor, if any). Resolves false when a consumer failed. */
  async write(chunk: Buffer): Promise<boolean> {
    if (this.failure !== undefined) return false;
    return this.editor ? this.editor.write(chunk) : this.fanOut(chunk);
  }

  private async fanOut(chunk: Buffer): Promise<boolean> {
    if (this.failure !== undefined) return false;
    for (const s of [...this.hooks, this.final]) {
      if (s.settled) continue;
      if (!s.stream.write(chunk)) await this.drained(s);
      if (this.failure !== undefined) return false;
    }
    return true;
  }

  /**
   * Ends the hooks' streams, waits for every hook, then ends the backend's stream and waits for it.
   * @throws the first error a consumer rejected with (the backend's stream is destroyed first, so it stores nothing).
   */
  async finish(): Promise<void> {
    if (this.failure === undefined) await this.editor?.finish();
    if (this.failure === undefined) {
      for (const h of this.hooks) if (!h.settled) h.stream.end();
      await Promise.allSettled(this.hooks.map((h) => h.result));
    }
    if (this.failure !== undefined) {
      await this.abort();
      throw this.failure;
    }
    this.final.stream.end();
    await this.final.result;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Destroys every stream with a {@link BodyAbortedError} and waits until every consumer has settled. Never throws. */
  async abort(): Promise<void> {
    const editing = this.editor?.abort(); // its streams are destroyed at once; settled below
    for (const s of [...this.hooks, this.final]) {
      if (!s.stream.destroyed) s.stream.destroy(new BodyAbortedError('message aborted'));
    }
    await editing;
    await Promise.allSettled([...this.hooks, this.final].map((s) => s.result));
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
