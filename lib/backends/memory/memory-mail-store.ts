import { inject, injectable, optional } from 'inversify';
import {
  MailStoreError,
  MailStoreOptions,
  type DeliverOptions,
  type MailStore,
  type MailboxEvent,
  type StoredMessage,
  type UserMailboxes,
} from '../../contracts/mail-store.js';
import { INBOX, normalizeMailboxName } from '../shared/mailbox-names.js';
import { normalizeFlags } from '../shared/message-flags.js';
import { newMailbox, snapshot, type MemMailbox, type MemMessage, type MemUser } from './memory-model.js';
import { MemoryUserMailboxes } from './memory-user-mailboxes.js';
import { MailboxEvents, MaildropLocks } from '../shared/store-events.js';
import { UserTable } from '../shared/user-table.js';

/**
 * A {@link MailStore} kept entirely in memory: the test double and samples' store. Everything is lost when the
 * process ends. Safe for concurrent sessions because every operation completes synchronously inside its promise.
 * Passwords are kept as plaintext (it is a test double), so `secretFor` supports APOP and CRAM-MD5.
 */
@injectable()
export class MemoryMailStore implements MailStore {
  /** {@inheritDoc MailStore.users} */
  readonly users = new UserTable({ hashPasswords: false, keepPlaintext: true });
  private readonly data = new Map<string, MemUser>();
  private readonly events = new MailboxEvents();
  private readonly locks = new MaildropLocks();
  private order = 0;

  /** @param options store options; `new MemoryMailStore()` uses the defaults. */
  constructor(@inject(MailStoreOptions) @optional() private readonly options: MailStoreOptions = {}) {}

  /** {@inheritDoc MailStore.deliver} */
  async deliver(address: string, raw: Buffer, options: DeliverOptions = {}): Promise<StoredMessage> {
    const username = await this.resolveUser(address);
    const mailbox = normalizeMailboxName(options.mailbox ?? INBOX);
    return this.insert(username, mailbox, raw, options.flags ?? [], options.internalDate ?? new Date());
  }

  /** {@inheritDoc MailStore.openUser} */
  async openUser(username: string): Promise<UserMailboxes> {
    return new MemoryUserMailboxes(this, await this.resolveUser(username));
  }

  /** {@inheritDoc MailStore.lock} */
  async lock(username: string, owner: string): Promise<() => void> {
    return this.locks.acquire(await this.resolveUser(username), owner);
  }

  /** {@inheritDoc MailStore.watch} */
  watch(listener: (event: MailboxEvent) => void): () => void {
    return this.events.watch(listener);
  }

  /** {@inheritDoc MailStore.allMessages} */
  async allMessages(): Promise<Array<{ username: string; mailbox: string; message: StoredMessage }>> {
    const rows: Array<{ username: string; mailbox: string; message: MemMessage }> = [];
    for (const [username, user] of this.data) {
      for (const [mailbox, box] of user.mailboxes) for (const message of box.messages) rows.push({ username, mailbox, message });
    }
    rows.sort((a, b) => a.message.internalDate.getTime() - b.message.internalDate.getTime() || a.message.order - b.message.order);
    return rows.map((row) => ({ username: row.username, mailbox: row.mailbox, message: snapshot(row.message) }));
  }

  /** {@inheritDoc MailStore.purge} */
  async purge(): Promise<void> {
    for (const [username, user] of this.data) {
      for (const [mailbox, box] of user.mailboxes) {
        if (box.messages.length === 0) continue;
        const uids = box.messages.map((m) => m.uid);
        box.messages = [];
        this.emit({ type: 'expunge', username, mailbox, uids });
      }
    }
  }

  /** @internal The mailboxes of a known user, created with INBOX on first use. */
  userData(username: string): MemUser {
    let user = this.data.get(username);
    if (user === undefined) {
      user = { mailboxes: new Map([[INBOX, newMailbox()]]), subscriptions: new Set() };
      this.data.set(username, user);
    }
    return user;
  }

  /** @internal */
  mailbox(username: string, name: string): MemMailbox {
    const box = this.userData(username).mailboxes.get(name);
    if (box === undefined) throw new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${name}`);
    return box;
  }

  /** @internal Stores one message and emits `exists`. */
  insert(username: string, mailbox: string, raw: Buffer, flags: Iterable<string>, internalDate: Date): StoredMessage {
    const box = this.mailbox(username, mailbox);
    const message: MemMessage = {
      uid: box.uidNext++,
      internalDate: new Date(internalDate.getTime()),
      raw, // the contract hands ownership of `raw` to the store: no second copy of every message
      flags: new Set(normalizeFlags(flags)),
      order: this.order++,
      recent: true,
    };
    box.messages.push(message);
    this.emit({ type: 'exists', username, mailbox, uid: message.uid });
    return snapshot(message);
  }

  /** @internal */
  emit(event: MailboxEvent): void {
    this.events.emit(event);
  }

  private async resolveUser(login: string): Promise<string> {
    const known = this.users.recordFor(login);
    if (known !== undefined) return known.username;
    if (this.options.autoCreateUsers !== true) throw new MailStoreError('NO_SUCH_USER', 'no such user');
    // GreenMail convention: the address is the username and the password.
    const username = login.includes('@') ? login.toLowerCase() : login;
    await this.users.add({ username, password: login });
    return username;
  }
}
