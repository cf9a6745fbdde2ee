import type { CloseReason } from '../core/connection.js';
import type { MailboxEvent, UserMailboxes } from '../contracts/mail-store.js';
import type { Logger } from '../log/logger.js';
import type { LineReader, LineResult } from '../protocol/line-reader.js';
import { wireMailbox } from './commands/args.js';
import { eventsFor, notifyStatusItems, statusLine, wants, type NotifyEvent, type NotifySpec } from './imap-notify.js';
import { untaggedLine } from './imap-replies.js';
import type { SelectedMailbox } from './imap-selected.js';

/** What {@link ImapUpdates} needs from its session. */
export interface UpdatesHost {
  readonly reader: LineReader;
  readonly log: Logger;
  readonly isEnding: boolean;
  send(data: string | Buffer): void;
  flush(): Promise<void>;
  end(reason?: CloseReason): Promise<void>;
  /** The selected mailbox and the user's view; undefined when none is selected. */
  selection(): { readonly mailbox: SelectedMailbox; readonly view: UserMailboxes } | undefined;
  /** The user's view after login (NOTIFY reads other mailboxes through it). */
  readonly userView: UserMailboxes | undefined;
  /** A command is running: unsolicited responses wait for its end. */
  readonly isBusy: boolean;
  /** UTF8=ACCEPT is on: mailbox names in UTF-8 (RFC 6855 §3). */
  readonly utf8: boolean;
  /** The `onMailbox` hooks allow `status` on this mailbox (NOTIFY's `* STATUS` is left out otherwise). */
  statusAllowed(mailbox: string): Promise<boolean>;
}

/**
 * The untagged updates of one session's selected mailbox (RFC 3501 §5.2, §7): store events mark the mailbox
 * dirty, and the due `EXISTS`/`RECENT`/`FETCH`/`EXPUNGE` responses are sent when a command ends, or at once
 * while the client IDLEs (RFC 2177). All sends go through one promise chain, so a push during IDLE and the
 * sync of a command never interleave.
 */
export class ImapUpdates {
  private chain: Promise<void> = Promise.resolve();
  private idling = false;
  /** NOTIFY SET (RFC 5465), or undefined for NOTIFY NONE / never set. */
  notify?: NotifySpec;
  private readonly pendingStatus = new Map<string, Set<NotifyEvent>>();
  private readonly pendingLines: string[] = [];

  constructor(private readonly host: UpdatesHost) {}

  /** A store event of this session's user: marks the selected mailbox dirty; during IDLE it is reported at once. */
  note(event: MailboxEvent): void {
    const mailbox = this.host.selection()?.mailbox;
    if (this.notify && event.mailbox !== mailbox?.name && this.noteOther(event, this.notify)) {
      if (this.idling || !this.host.isBusy) void this.push();
    }
    if (!mailbox) return;
    mailbox.note(event);
    if (this.idling && mailbox.isDirty) void this.push();
  }

  /** RFC 5465 §5: queues the notification for a mailbox other than the selected one; true when one was queued. */
  private noteOther(event: MailboxEvent, spec: NotifySpec): boolean {
    const events = eventsFor(spec, event.mailbox);
    if (event.type === 'mailbox' && event.change === 'renamed' && event.newName) {
      for (const e of eventsFor(spec, event.newName)) events.add(e);
    }
    if (!wants(events, event)) return false;
    if (event.type !== 'mailbox') {
      this.pendingStatus.set(event.mailbox, events);
      return true;
    }
    // RFC 5465 §5.4: MailboxName events are LIST responses (with OLDNAME for a rename, RFC 5258 §3.2.2.1).
    if (event.change === 'created') this.pendingLines.push(`* LIST () "/" ${wireMailbox(event.mailbox, this.host.utf8)}\r\n`);
    else if (event.change === 'deleted') this.pendingLines.push(`* LIST (\\NonExistent) "/" ${wireMailbox(event.mailbox, this.host.utf8)}\r\n`);
    else if (event.newName) this.pendingLines.push(`* LIST () "/" ${wireMailbox(event.newName, this.host.utf8)} ("OLDNAME" (${wireMailbox(event.mailbox, this.host.utf8)}))\r\n`);
    return true;
  }

  /** Sends the queued NOTIFY responses: one fresh STATUS per mailbox, then the LIST lines. */
  private async sendNotifications(): Promise<void> {
    const view = this.host.userView;
    const pending = [...this.pendingStatus];
    this.pendingStatus.clear();
    for (const [name, events] of pending) {
      const info = await view?.info(name).catch(() => undefined);
      if (info && (await this.host.statusAllowed(info.name))) this.host.send(statusLine(wireMailbox(info.name, this.host.utf8), notifyStatusItems(events, info)));
    }
    for (const line of this.pendingLines.splice(0)) this.host.send(line);
  }

  /**
   * Queues the updates that are due, with EXPUNGE only when `allowExpunge` (RFC 3501 §7.4.1: not during
   * FETCH, STORE, SEARCH or COPY). Rejects with the store's error (a bug: dispatch reports it).
   */
  async due(allowExpunge: boolean): Promise<void> {
    const run = this.chain.then(() => this.sendNow(allowExpunge));
    // Keep the chain usable after a failure; the caller still sees the error.
    this.chain = run.catch(() => undefined);
    await run;
  }

  /**
   * IDLE (RFC 2177): sends `+ idling`, reports updates as they happen, and resolves with the client's next
   * line (normally `DONE`) once every update already started has been sent.
   */
  async idle(): Promise<LineResult> {
    this.host.send('+ idling\r\n');
    this.idling = true;
    try {
      await this.push();
      const r = await this.host.reader.readLine();
      this.idling = false;
      await this.chain;
      return r;
    } finally {
      this.idling = false;
    }
  }

  /** Sends the due updates and flushes them now (IDLE). Failures are logged: nobody awaits a push. */
  private push(): Promise<void> {
    this.chain = this.chain.then(async () => {
      try {
        await this.sendNow(true);
        await this.host.flush();
      } catch (err) {
        this.host.log.error('update failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      }
    });
    return this.chain;
  }

  private async sendNow(allowExpunge: boolean): Promise<void> {
    const host = this.host;
    if (host.isEnding) return;
    await this.sendNotifications();
    const selection = host.selection();
    if (!selection) return;
    const { lines, gone } = await selection.mailbox.sync(selection.view, allowExpunge);
    for (const l of lines) host.send(l);
    // RFC 5267 §4.3: live searches report how their result changed.
    if (!gone && selection.mailbox.contexts.isActive) for (const l of await selection.mailbox.contexts.refresh(selection.mailbox)) host.send(l);
    if (gone) {
      host.log.info('selected mailbox deleted, closing', {});
      host.send(untaggedLine('BYE', undefined, 'Selected mailbox was deleted'));
      await host.end('closed');
    }
  }
}
