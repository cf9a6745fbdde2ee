import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { MimePart } from '../../mime/mime-parse.js';
import { isErrno } from './durable-fs.js';

/** What the cache keeps per message. */
export interface CachedMessage {
  readonly structure: MimePart;
  /** Size with CRLF line ends. */
  readonly canonicalSize: number;
}

/** Name of the per-folder index cache (like dovecot.index.cache): parsed structures by message base name. */
export const FOLDER_CACHE_FILE = 'postern-cache';
/** The cache is rewritten when it holds more than twice the live messages plus this many lines. */
const CACHE_SLACK = 1000;

let tmpCounter = 0;

/**
 * The index cache of one folder: one JSON line `{"b": base, "s": structure, "w": canonical size}` per message, appended when a
 * structure is first computed (on delivery, or on first FETCH of an older message). It is only a cache: never
 * fsynced, torn or foreign lines are skipped, and a lost file is rebuilt from the messages. Several processes may
 * append to it (each line is one `write` in append mode); each keeps its own copy loaded on first use.
 */
export class FolderCache {
  private map: Map<string, CachedMessage> | undefined;
  private loading: Promise<Map<string, CachedMessage>> | undefined;
  private lines = 0;
  private queue: string[] = [];
  private writing: Promise<void> = Promise.resolve();

  /** @param dir the folder directory (updated by {@link moveTo}). */
  constructor(private dir: string) {}

  /** Follows a rename of the folder. */
  moveTo(dir: string): void {
    this.dir = dir;
  }

  /** The cached structure of a message, loading the file on first use. */
  async get(base: string): Promise<CachedMessage | undefined> {
    return (await this.load()).get(base);
  }

  /** Remembers a structure and appends it to the file in the background. */
  put(base: string, cached: CachedMessage): void {
    this.map?.set(base, cached);
    this.queue.push(JSON.stringify({ b: base, s: cached.structure, w: cached.canonicalSize }) + '\n');
    if (this.queue.length === 1) this.writing = this.writing.then(() => this.flush());
  }

  /** Resolves once queued lines are written (tests, close). */
  settled(): Promise<void> {
    return this.writing;
  }

  /**
   * Drops entries of messages no longer in `live` by rewriting the file (temporary file + rename), when it has grown
   * well past them. Runs on the folder's queue after a log compaction; cheap to skip.
   */
  async compact(live: ReadonlySet<string>): Promise<void> {
    if (this.lines <= 2 * live.size + CACHE_SLACK) return;
    const map = await this.load();
    await this.writing;
    for (const base of [...map.keys()]) if (!live.has(base)) map.delete(base);
    const path = join(this.dir, FOLDER_CACHE_FILE);
    const temporary = `${path}.tmp-${process.pid}-${++tmpCounter}`;
    const text = [...map].map(([b, c]) => JSON.stringify({ b, s: c.structure, w: c.canonicalSize }) + '\n').join('');
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    this.lines = map.size;
  }

  private load(): Promise<Map<string, CachedMessage>> {
    if (this.map !== undefined) return Promise.resolve(this.map);
    this.loading ??= (async () => {
      const map = new Map<string, CachedMessage>();
      let text = '';
      try {
        text = await readFile(join(this.dir, FOLDER_CACHE_FILE), 'utf8');
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        this.lines++;
        try {
          const item = JSON.parse(line) as { b?: unknown; s?: unknown; w?: unknown };
          if (typeof item.b === 'string' && typeof item.s === 'object' && item.s !== null && Number.isSafeInteger(item.w)) {
            map.set(item.b, { structure: item.s as MimePart, canonicalSize: item.w as number });
          }
        } catch {
          // a torn line of a crashed writer: that message is parsed again when asked
        }
      }
      this.map = map;
      return map;
    })();
    return this.loading;
  }

  private async flush(): Promise<void> {
    const text = this.queue.join('');
    const count = this.queue.length;
    this.queue = [];
    try {
      const handle = await open(join(this.dir, FOLDER_CACHE_FILE), 'a', 0o600);
      try {
        await handle.write(text);
      } finally {
        await handle.close();
      }
      this.lines += count;
    } catch {
      // Only a cache (e.g. the folder was deleted meanwhile): the structures are parsed again when asked.
    }
  }
}
