/** How a Maildir folder notices changes by other processes and tools while nobody calls it. */
import { watch, type FSWatcher } from 'node:fs';
import { FOLDER_LOG_FILE } from './folder-state.js';

/** Polling period for changes by other processes and tools (fs.watch makes Postern's own writers faster). */
export const WATCH_POLL_MS = 1000;

/**
 * fs.watch on a folder directory (the log is appended there) plus a {@link WATCH_POLL_MS} poll that also catches tools
 * that only touch `new/` and `cur/`. Either calls `onChange` at most once per event-loop turn, in a later turn.
 * Neither keeps the process alive.
 */
export class FolderWatcher {
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private kicked = false;

  constructor(private readonly onChange: () => void) {}

  /** True between {@link start} and {@link stop}. */
  get active(): boolean {
    return this.poller !== undefined;
  }

  /** Starts watching the folder at `path`. Idempotent. */
  start(path: string): void {
    if (this.poller !== undefined) return;
    try {
      this.watcher = watch(path, { persistent: false }, (_type, name) => {
        if (name === null || name === FOLDER_LOG_FILE) this.kick();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // no inotify here: the poll alone does it
    }
    this.poller = setInterval(() => this.kick(), WATCH_POLL_MS);
    this.poller.unref();
  }

  /** Stops watching. Idempotent. */
  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
  }

  private kick(): void {
    if (this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.onChange();
    });
  }
}
