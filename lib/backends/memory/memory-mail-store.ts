import { inject, injectable, optional } from '../../vendor/inversify.js';
import {
  MailStoreError,
  MailStoreOptions,
  type DeliverOptions,
  type DeliveryEnvelope,
  type MailStore,
  type MailboxEvent,
  type MailboxWatching,
  type MaildropLocking,
  type ObjectIdentity,
  type StoredMessage,
  type UserMailboxes,
} from '../../contracts/mail-store.js';
import { INBOX, normalizeMailboxName } from '../shared/mailbox-names.js';
import { normalizeFlags } from '../shared/message-flags.js';
import { keptFlags, NO_FLAGS, newMailbox, nextModseq, snapshot, type MemMailbox, type MemMessage, type MemUser } from './memory-model.js';
import { MemoryUserMailboxes } from './memory-user-mailboxes.js';
import { MailboxEvents, MaildropLocks } from '../shared/store-events.js';
import { UserTable } from '../shared/user-table.js';

/**
 * A {@link MailStore} kept entirely in memory: the test double and samples' store. Everything is lost when the
 * process ends. Safe for concurrent sessions because every operation completes synchronously inside its promise.
 * Passwords are kept as plaintext (it is a test double), so `secretFor` supports APOP and CRAM-MD5.
 */
@injectable()
export class MemoryMailStore implements MailStore, MaildropLocking, MailboxWatching, ObjectIdentity {
  /** {@inheritDoc ObjectIdentity.hasObjectIdentity} */
  readonly hasObjectIdentity = true;
  /** {@inheritDoc MailStore.keepsMessageBuffers} */
  readonly keepsMessageBuffers = true;
  /** {@inheritDoc MailStore.users} */
  readonly users = new UserTable({ hashPasswords: false, keepPlaintext: true });
  private readonly data = new Map<string, MemUser>();
  private readonly events = new MailboxEvents();
  private readonly locks = new MaildropLocks();

  /** @param options store options; `new MemoryMailStore()` uses the defaults. */
  constructor(@inject(MailStoreOptions) @optional() private readonly options: MailStoreOptions = {}) {}

  /**
   * {@inheritDoc MailStore.deliver}
   * A known user's delivery completes synchronously inside its one promise, with no async frame (issue 15: SMTP
   * delivers each message through here).
   */
  deliver(address: string, raw: Buffer, options: DeliverOptions = {}): Promise<StoredMessage> {
    try {
      const known = this.users.recordFor(address)?.username;
      if (known === undefined) return this.deliverToNewUser(address, raw, options);
      return Promise.resolve(this.insertDelivered(known, raw, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@link deliver} to an address no user has yet: created when `autoCreateUsers`, else `NO_SUCH_USER`. */
  private async deliverToNewUser(address: string, raw: Buffer, options: DeliverOptions): Promise<StoredMessage> {
    return this.insertDelivered(await this.resolveUser(address), raw, options);
  }

  private insertDelivered(username: string, raw: Buffer, options: DeliverOptions): StoredMessage {
    const mailbox = options.mailbox === undefined ? INBOX : normalizeMailboxName(options.mailbox);
    return this.insert(username, mailbox, raw, options.flags ?? [], options.internalDate, options.envelope);
  }

  /** {@inheritDoc MailStore.openUser} */
  async openUser(username: string): Promise<UserMailboxes> {
    return new MemoryUserMailboxes(this, await this.resolveUser(username));
  }

  /** {@inheritDoc MaildropLocking.lock} */
  async lock(username: string, owner: string): Promise<() => void> {
    return this.locks.acquire(await this.resolveUser(username), owner);
  }

  /** {@inheritDoc MailboxWatching.watch} */
  watch(listener: (event: MailboxEvent) => void): () => void {
    return this.events.watch(listener);
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

  /**
   * @internal Stores one message and emits `exists`. `internalDate` defaults to now; `emailId` is the source's
   * when a copy already knows it (equal octets, equal EMAILID).
   */
  insert(username: string, mailbox: string, raw: Buffer, flags: Iterable<string>, internalDate?: Date, envelope?: DeliveryEnvelope, emailId?: string): StoredMessage {
    const box = this.mailbox(username, mailbox);
    const now = Date.now();
    const internalTime = internalDate?.getTime() ?? now;
    // Every field in the same order for every message: one hidden class, no per-message property dictionary.
    const message: MemMessage = {
      uid: box.uidNext++,
      internalTime,
      raw, // the contract hands ownership of `raw` to the store: no second copy of every message
      flags: isEmpty(flags) ? NO_FLAGS : keptFlags(new Set(normalizeFlags(flags))),
      modseq: nextModseq(box),
      envelope,
      recent: true,
      emailId,
      saveTime: internalTime === now ? undefined : now,
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

/** True for an empty array (a delivery without flags): no Set is made for it. */
function isEmpty(flags: Iterable<string>): boolean {
  return Array.isArray(flags) && flags.length === 0;
}
