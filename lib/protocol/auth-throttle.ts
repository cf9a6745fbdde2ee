import type { ServiceIdentifier } from 'inversify';

/**
 * Failed logins from one client address, within {@link AUTH_FAILURE_WINDOW_MS}, after which that address is refused
 * for a while whatever it sends (Postfix's anvil counts per client; Dovecot's auth penalty too).
 */
export const MAX_AUTH_FAILURES_PER_ADDRESS = 30;
/**
 * Failed logins on one account, from any address, after which logins to it are refused — except from addresses
 * that logged in to it successfully within the window, so an attacker cannot lock its owner out.
 */
export const MAX_AUTH_FAILURES_PER_ACCOUNT = 10;
/** How long a failure counts: counters expire this long after their last failure. */
export const AUTH_FAILURE_WINDOW_MS = 15 * 60_000;
/** Longest delay before a failed login is answered (Dovecot's auth penalty stops at 15 s). */
export const AUTH_MAX_DELAY_MS = 15_000;
/** Entries kept per table (addresses, accounts); the least recently failed go first. ~200 bytes each. */
export const AUTH_THROTTLE_MAX_ENTRIES = 10_000;

/** The `authThrottle` section of the configuration. All optional; 0 turns a cap off. */
export interface AuthThrottleOptions {
  /** Default {@link MAX_AUTH_FAILURES_PER_ADDRESS}. */
  maxFailuresPerAddress?: number;
  /** Default {@link MAX_AUTH_FAILURES_PER_ACCOUNT}. */
  maxFailuresPerAccount?: number;
  /** Default {@link AUTH_FAILURE_WINDOW_MS}. */
  windowMs?: number;
  /** Default {@link AUTH_MAX_DELAY_MS}. */
  maxDelayMs?: number;
  /** Default {@link AUTH_THROTTLE_MAX_ENTRIES}. */
  maxEntries?: number;
  /** Clock (tests); default `Date.now`. */
  now?: () => number;
}

interface Entry {
  failures: number;
  last: number;
  /** Accounts only: addresses that logged in successfully within the window (at most 8 kept). */
  good?: Set<string>;
}

/**
 * One failed or successful login as {@link AuthThrottle} records it: what a `--workers` cluster passes between
 * processes so that every worker counts every worker's failures.
 */
export interface AuthThrottleEvent {
  readonly kind: 'failure' | 'success';
  /** The client's address. */
  readonly address: string;
  /** The login tried (username or address). */
  readonly account: string;
}

/** Addresses remembered per account as having logged in successfully. */
const GOOD_ADDRESSES_PER_ACCOUNT = 8;

/**
 * Failed-login counters shared by every protocol and connection of a process, so that 200 parallel connections get
 * no more guesses than one. One instance per container (bound as a singleton by `coreModule` under the
 * {@link AuthThrottle} token); the protocol sessions call {@link isRefused} before checking credentials,
 * {@link failure} after a wrong password and {@link success} after a login.
 *
 * Memory is bounded: each table keeps at most `maxEntries` entries (least recently failed dropped first) and an
 * entry expires `windowMs` after its last failure.
 */
export class AuthThrottle {
  private readonly addresses = new Map<string, Entry>();
  private readonly accounts = new Map<string, Entry>();
  private readonly o: Required<AuthThrottleOptions>;
  private readonly listeners = new Set<(event: AuthThrottleEvent) => void>();

  constructor(options: AuthThrottleOptions = {}) {
    this.o = {
      maxFailuresPerAddress: options.maxFailuresPerAddress ?? MAX_AUTH_FAILURES_PER_ADDRESS,
      maxFailuresPerAccount: options.maxFailuresPerAccount ?? MAX_AUTH_FAILURES_PER_ACCOUNT,
      windowMs: options.windowMs ?? AUTH_FAILURE_WINDOW_MS,
      maxDelayMs: options.maxDelayMs ?? AUTH_MAX_DELAY_MS,
      maxEntries: options.maxEntries ?? AUTH_THROTTLE_MAX_ENTRIES,
      now: options.now ?? Date.now,
    };
  }

  /** Entries held (addresses + accounts): bounded by twice `maxEntries`. */
  get size(): number {
    return this.addresses.size + this.accounts.size;
  }

  /**
   * Whether a login attempt from `address` for `account` is refused without checking its credentials, and why.
   * Undefined when it may go ahead.
   */
  isRefused(address: string, account: string): 'address' | 'account' | undefined {
    const a = this.get(this.addresses, address);
    if (this.o.maxFailuresPerAddress > 0 && a && a.failures >= this.o.maxFailuresPerAddress) return 'address';
    const u = this.get(this.accounts, key(account));
    if (this.o.maxFailuresPerAccount > 0 && u && u.failures >= this.o.maxFailuresPerAccount && !u.good?.has(address)) return 'account';
    return undefined;
  }

  /**
   * Records a failed login and returns how long to wait before answering it: `baseDelayMs` doubled for each earlier
   * failure of this address or account (whichever has more), at most `maxDelayMs`.
   */
  failure(address: string, account: string, baseDelayMs: number): number {
    const n = this.recordFailure(address, account);
    this.announce({ kind: 'failure', address, account });
    return Math.min(baseDelayMs * 2 ** Math.min(n - 1, 20), Math.max(this.o.maxDelayMs, baseDelayMs));
  }

  /**
   * Records a successful login: the account's failures are forgiven and the address is remembered as good for it.
   * The address's own count stays (one valid account must not let an address guess the passwords of others).
   */
  success(address: string, account: string): void {
    this.recordSuccess(address, account);
    this.announce({ kind: 'success', address, account });
  }

  /**
   * Calls `listener` after each failure or success recorded here (not after {@link apply}): how a cluster worker
   * tells the others. Returns the function that removes the listener.
   */
  onEvent(listener: (event: AuthThrottleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Counts a failure or success another process recorded, as if it happened here (listeners are not called). */
  apply(event: AuthThrottleEvent): void {
    if (event.kind === 'failure') this.recordFailure(event.address, event.account);
    else this.recordSuccess(event.address, event.account);
  }

  private announce(event: AuthThrottleEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Counts a failure; resolves the larger of the address's and the account's failure counts. */
  private recordFailure(address: string, account: string): number {
    const a = this.bump(this.addresses, address);
    const u = this.bump(this.accounts, key(account));
    return Math.max(a.failures, u.failures);
  }

  private recordSuccess(address: string, account: string): void {
    const k = key(account);
    const u = this.get(this.accounts, k) ?? { failures: 0, last: 0 };
    u.failures = 0;
    u.last = this.o.now();
    this.accounts.delete(k);
    this.accounts.set(k, u);
    while (this.accounts.size > this.o.maxEntries) this.accounts.delete(this.accounts.keys().next().value as string);
    u.good ??= new Set();
    u.good.delete(address);
    u.good.add(address);
    if (u.good.size > GOOD_ADDRESSES_PER_ACCOUNT) u.good.delete(u.good.values().next().value as string);
  }

  private get(table: Map<string, Entry>, k: string): Entry | undefined {
    const e = table.get(k);
    if (e && this.o.now() - e.last > this.o.windowMs) {
      table.delete(k);
      return undefined;
    }
    return e;
  }

  private bump(table: Map<string, Entry>, k: string): Entry {
    const e = this.get(table, k) ?? { failures: 0, last: 0 };
    e.failures++;
    e.last = this.o.now();
    table.delete(k); // re-insert: Map order is the LRU order
    table.set(k, e);
    while (table.size > this.o.maxEntries) table.delete(table.keys().next().value as string);
    return e;
  }
}
/** DI token of the process-wide {@link AuthThrottle}. */
export const AuthThrottleToken = Symbol.for('postern.AuthThrottle') as ServiceIdentifier<AuthThrottle>;

/** Account names compare case-insensitively (logins and addresses). */
function key(account: string): string {
  return account.toLowerCase();
}
