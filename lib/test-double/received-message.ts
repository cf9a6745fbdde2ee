import type { AddressObject, ParsedMail } from 'mailparser';
import { supportsWatch, type DeliveryEnvelope, type MailStore } from '../contracts/mail-store.js';
import { listStoredMessages, purgeStoredMessages, deleteStoredMessage, type StoredEntry } from './store-queries.js';

/** A mailbox with its display name (`"Alice" <alice@example.test>` → `{ name: 'Alice', address: 'alice@example.test' }`). */
export interface MailAddress {
  /** Display name, `''` when none (RFC 5322 §3.4 `display-name`). */
  readonly name: string;
  readonly address: string;
}

/** One attachment (any MIME part mailparser does not take as the text or HTML body). */
export interface ReceivedAttachment {
  readonly filename?: string;
  readonly contentType: string;
  readonly size: number;
  readonly contentId?: string;
  /** `attachment` or `inline`. */
  readonly disposition?: string;
  readonly content: Buffer;
}

/** A message as a test sees it: parsed once (mailparser), with where it is stored and the raw source. */
export interface ReceivedMessage {
  /** Opaque id, stable while the message exists; the HTTP API's `{id}`. */
  readonly id: string;
  /** The mailbox owner. */
  readonly username: string;
  readonly mailbox: string;
  readonly uid: number;
  /** Octets stored. */
  readonly size: number;
  /** When the store received it (IMAP internal date). */
  readonly internalDate: Date;
  /**
   * How it arrived over SMTP: MAIL FROM, every RCPT TO (Bcc recipients included), HELO, authenticated user, client
   * address and port, TLS protocol/cipher/client certificate subject, time. Absent for APPEND, COPY or direct deliveries.
   */
  readonly envelope?: DeliveryEnvelope;
  /** Flags now (`\Seen`, keywords…), read fresh on every call. */
  readonly flags: readonly string[];
  /** `Message-ID` without angle brackets. */
  readonly messageId?: string;
  /** The `Date:` header. */
  readonly date?: Date;
  readonly subject?: string;
  /** First `From:` mailbox, display name kept. */
  readonly from?: MailAddress;
  readonly to: readonly MailAddress[];
  readonly cc: readonly MailAddress[];
  /** A `Bcc:` header if the message carried one (SMTP Bcc recipients show in `envelope.rcptTo` instead). */
  readonly bcc: readonly MailAddress[];
  readonly replyTo: readonly MailAddress[];
  readonly text?: string;
  readonly html?: string;
  readonly attachments: readonly ReceivedAttachment[];
  /** Headers by lower-case name, typed by mailparser (dates as `Date`, addresses as objects, `content-type` structured). */
  readonly headers: ReadonlyMap<string, unknown>;
  /** Every header line as written, in order (`{ key: 'subject', line: 'Subject: Hi' }`). */
  readonly headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>;
  /** The exact octets stored. */
  readonly raw: Buffer;
}

/** What is parsed once per stored message and cached. */
type Parsed = Omit<ReceivedMessage, 'id' | 'username' | 'mailbox' | 'uid' | 'size' | 'internalDate' | 'flags' | 'envelope' | 'raw'> & { raw: Buffer };

/** mailparser, loaded on first parse so that `import 'postern'` stays fast. */
let parser: Promise<typeof import('mailparser')> | undefined;

async function parse(raw: Buffer): Promise<Parsed> {
  const { simpleParser } = await (parser ??= import('mailparser'));
  const m: ParsedMail = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
  return {
    messageId: m.messageId?.replace(/^<|>$/g, ''),
    date: m.date,
    subject: m.subject,
    from: addresses(m.from)[0],
    to: addresses(m.to),
    cc: addresses(m.cc),
    bcc: addresses(m.bcc),
    replyTo: addresses(m.replyTo),
    text: m.text,
    html: m.html === false ? undefined : m.html,
    attachments: m.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.size, contentId: a.contentId, disposition: a.contentDisposition, content: a.content })),
    headers: m.headers,
    headerLines: m.headerLines.map((h) => ({ key: h.key, line: h.line })),
    raw,
  };
}

/** Flattens mailparser address objects (groups included) into name/address pairs. */
function addresses(a: AddressObject | AddressObject[] | undefined): MailAddress[] {
  const out: MailAddress[] = [];
  const walk = (list: AddressObject['value']): void => {
    for (const v of list) {
      if (v.group) walk(v.group);
      else if (v.address) out.push({ name: v.name ?? '', address: v.address });
    }
  };
  for (const o of Array.isArray(a) ? a : a ? [a] : []) walk(o.value);
  return out;
}

/** One line describing a message, for error texts. */
export function describeMessage(m: ReceivedMessage): string {
  return `${m.username}/${m.mailbox} uid ${m.uid} "${m.subject ?? ''}" from ${m.from?.address ?? '-'} to ${m.to.map((t) => t.address).join(',') || '-'}`;
}

/**
 * The test double's read side over a {@link MailStore}: lists messages through the public store methods, parses each
 * one once (cached by id, dropped when the message goes), waits for messages, deletes and purges. One per running
 * server; the HTTP API and the web inbox use the same instance.
 */
export class MessageCatalog {
  private readonly cache = new Map<string, Promise<Parsed>>();

  constructor(readonly store: MailStore) {}

  /** Every stored message, parsed, oldest first. */
  async list(): Promise<ReceivedMessage[]> {
    const entries = await listStoredMessages(this.store);
    const live = new Set(entries.map((e) => e.id));
    for (const id of this.cache.keys()) if (!live.has(id)) this.cache.delete(id);
    return Promise.all(entries.map((e) => this.materialize(e)));
  }

  /** One message by id, or undefined. */
  async get(id: string): Promise<ReceivedMessage | undefined> {
    const entry = (await listStoredMessages(this.store)).find((e) => e.id === id);
    return entry ? this.materialize(entry) : undefined;
  }

  /** Deletes one message; false when there is none with this id. */
  async delete(id: string): Promise<boolean> {
    const done = await deleteStoredMessage(this.store, id);
    this.cache.delete(id);
    return done;
  }

  /** Deletes every message (users stay); resolves how many went. */
  async purge(): Promise<number> {
    const n = await purgeStoredMessages(this.store);
    this.cache.clear();
    return n;
  }

  /**
   * Calls `listener` after each store change (debounced to one call per turn of the event loop, so a MOVE is seen
   * whole). Uses the store's `watch` capability when it has one, else polls every 100 ms. Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    let pending: NodeJS.Immediate | undefined;
    const fire = (): void => {
      if (pending) return;
      pending = setImmediate(() => {
        pending = undefined;
        listener();
      });
    };
    const store = this.store;
    if (supportsWatch(store)) {
      const unwatch = store.watch((e) => {
        if (e.type === 'exists' || e.type === 'expunge' || e.type === 'flags') fire();
      });
      return () => {
        unwatch();
        if (pending) clearImmediate(pending);
      };
    }
    // A store without change feed: poll (a bounded, unref'd timer).
    const timer = setInterval(fire, POLL_MS).unref();
    return () => {
      clearInterval(timer);
      if (pending) clearImmediate(pending);
    };
  }

  /**
   * Resolves with the first stored message (oldest first) for which `predicate` is true, now or once it arrives.
   * @throws Error after `timeoutMs`, listing what was seen.
   */
  async waitFor(predicate: (m: ReceivedMessage) => boolean, timeoutMs: number, what = 'waitForMessage'): Promise<ReceivedMessage> {
    let seen: ReceivedMessage[] = [];
    const found = await this.waitUntil(timeoutMs, async () => {
      seen = await this.list();
      return seen.find(predicate);
    });
    if (found) return found;
    const shown = seen.slice(0, MAX_DESCRIBED).map(describeMessage);
    const more = seen.length > MAX_DESCRIBED ? `; and ${seen.length - MAX_DESCRIBED} more` : '';
    throw new Error(`${what}: no message matched after ${timeoutMs} ms; saw ${seen.length} message(s)${shown.length ? ': ' + shown.join('; ') : ''}${more}`);
  }

  /**
   * Resolves with every message once at least `count` are stored.
   * @throws Error after `timeoutMs` saying how many arrived.
   */
  async waitForCount(count: number, timeoutMs: number): Promise<ReceivedMessage[]> {
    let have = 0;
    const ok = await this.waitUntil(timeoutMs, async () => {
      have = (await listStoredMessages(this.store)).length;
      return have >= count ? true : undefined;
    });
    if (!ok) throw new Error(`waitForMessages: ${have} of ${count} message(s) after ${timeoutMs} ms`);
    return this.list();
  }

  /** Runs `check` now and after every store change until it returns a value or `timeoutMs` passes (then undefined). */
  private waitUntil<T>(timeoutMs: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      let done = false;
      let running = false;
      let again = false;
      const finish = (value: T | undefined, err?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unwatch();
        if (err !== undefined) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve(value);
      };
      const run = (): void => {
        if (done) return;
        if (running) {
          again = true;
          return;
        }
        running = true;
        check().then(
          (v) => {
            running = false;
            if (v !== undefined) finish(v);
            else if (again) {
              again = false;
              run();
            }
          },
          (err: unknown) => finish(undefined, err),
        );
      };
      // The watch is set before the first check, so a delivery racing it is not missed.
      const unwatch = this.onChange(run);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      run();
    });
  }

  private async materialize(e: StoredEntry): Promise<ReceivedMessage> {
    let parsed = this.cache.get(e.id);
    if (!parsed) {
      parsed = e.message.raw().then(parse);
      this.cache.set(e.id, parsed);
      parsed.catch(() => this.cache.delete(e.id));
    }
    const p = await parsed;
    return {
      ...p,
      id: e.id,
      username: e.username,
      mailbox: e.mailbox,
      uid: e.message.uid,
      size: e.message.size,
      internalDate: e.message.internalDate,
      flags: [...e.message.flags],
      ...(e.message.envelope ? { envelope: e.message.envelope } : {}),
    };
  }
}

/** Poll interval for stores without a change feed. */
const POLL_MS = 100;
/** Messages named in a waitForMessage timeout error. */
const MAX_DESCRIBED = 10;
