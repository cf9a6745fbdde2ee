import type { ServiceIdentifier } from 'inversify';

/**
 * Default connections one client address may hold on one listener. Below the listener's own ceiling
 * (`MAX_CONNECTIONS`, 1000), so one address can never fill a listener and a client from any other address still
 * gets in at once. Postfix's `smtpd_client_connection_count_limit` is 50; a NAT'd office with many IMAP clients
 * (Thunderbird opens up to 5 per account) needs more, hence 100.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 100;

/** Default connections one client address may hold across every listener of the process. */
export const MAX_CONNECTIONS_PER_ADDRESS_TOTAL = 300;

/** Default connections across every listener of the process (six listeners at their default 1000 each). */
export const MAX_CONNECTIONS_TOTAL = 6000;

/** Process-wide connection caps, shared by every listener. All optional; 0 means no cap. */
export interface ConnectionLimitsOptions {
  /** Connections one client address may hold across all listeners (default {@link MAX_CONNECTIONS_PER_ADDRESS_TOTAL}). */
  maxConnectionsPerAddressTotal?: number;
  /** Connections across all listeners (default {@link MAX_CONNECTIONS_TOTAL}). */
  maxConnectionsTotal?: number;
}

/**
 * Default pre-authentication deadline: a session that has not logged in (or, on SMTP, begun a mail transaction)
 * two minutes after its greeting is ended. Dovecot closes an unauthenticated login after 3 minutes; a real client
 * logs in within seconds.
 */
export const PRE_AUTH_TIMEOUT_MS = 120_000;

/**
 * Default whole-command deadline: one command line may take this long from its first octet to its CRLF (the idle
 * timeout, when shorter, wins). Real clients send a line in one packet; Postfix's `smtpd_timeout` is 300 s per
 * command, but that restarts on every read.
 */
export const COMMAND_TIMEOUT_MS = 60_000;

/** The `limits` section of the configuration: caps and deadlines applied to every listener. 0 turns one off. */
export interface ServerLimits extends ConnectionLimitsOptions {
  /** Connections per listener (default `MAX_CONNECTIONS`, 1000). */
  maxConnections?: number;
  /** Connections one client address may hold on one listener (default {@link MAX_CONNECTIONS_PER_ADDRESS}). */
  maxConnectionsPerAddress?: number;
  /** Pre-authentication deadline in ms (default {@link PRE_AUTH_TIMEOUT_MS}). */
  preAuthTimeoutMs?: number;
  /** Whole-command deadline in ms (default {@link COMMAND_TIMEOUT_MS}). */
  commandTimeoutMs?: number;
}

/** The per-listener part of {@link ServerLimits} with defaults, as `TcpServerOptions` fields. */
export function listenerLimits(limits: ServerLimits = {}): {
  maxConnections?: number;
  maxConnectionsPerAddress: number;
  preAuthTimeoutMs: number;
  commandTimeoutMs: number;
} {
  for (const [k, v] of Object.entries(limits)) {
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0)) throw new RangeError(`limits.${k} must be a non-negative integer`);
  }
  return {
    maxConnections: limits.maxConnections,
    maxConnectionsPerAddress: limits.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS,
    preAuthTimeoutMs: limits.preAuthTimeoutMs ?? PRE_AUTH_TIMEOUT_MS,
    commandTimeoutMs: limits.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
  };
}

/** Why a connection was refused, in logs and metrics. */
export type RefusalReason = 'listener-full' | 'address-limit' | 'address-total-limit' | 'total-limit';

/**
 * Counts live connections per client address across every listener of a process, so that caps hold in total and
 * not only per listener. One instance per container (bound as a singleton by `coreModule`); `TcpServer` takes a
 * slot for every accepted connection and gives it back when the connection closes.
 */
export class ConnectionLimits {
  private readonly perAddress = new Map<string, number>();
  private total = 0;
  private readonly maxPerAddress: number;
  private readonly maxTotal: number;

  constructor(options: ConnectionLimitsOptions = {}) {
    this.maxPerAddress = options.maxConnectionsPerAddressTotal ?? MAX_CONNECTIONS_PER_ADDRESS_TOTAL;
    this.maxTotal = options.maxConnectionsTotal ?? MAX_CONNECTIONS_TOTAL;
  }

  /** Live connections across all listeners. */
  get size(): number {
    return this.total;
  }

  /** Live connections of one address across all listeners. */
  countOf(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  /**
   * Takes a slot for a connection from `address`, or says which cap refuses it. The caller calls the returned
   * release function exactly once when the connection closes.
   */
  acquire(address: string): { release: () => void } | { refused: RefusalReason; max: number } {
    if (this.maxTotal > 0 && this.total >= this.maxTotal) return { refused: 'total-limit', max: this.maxTotal };
    const n = this.countOf(address);
    if (this.maxPerAddress > 0 && n >= this.maxPerAddress) return { refused: 'address-total-limit', max: this.maxPerAddress };
    this.perAddress.set(address, n + 1);
    this.total++;
    return new Slot(this, address);
  }

  /** Gives back one slot of `address` (called once per slot, by {@link Slot.release}). */
  private give(address: string): void {
    this.total--;
    const left = this.countOf(address) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address);
  }

  /** @internal {@link Slot}'s way back in. */
  static giveBack(limits: ConnectionLimits, address: string): void {
    limits.give(address);
  }
}

/**
 * One taken slot. A class rather than a closure per connection: V8 keeps a closure's optimized code only while a
 * closure that ran it is alive, so per-connection closures were recompiled after every full collection (issue 15).
 */
class Slot {
  /** Callable detached (`const { release } = slot`), as the closure it replaces was. */
  readonly release: () => void = this.free.bind(this);
  private released = false;
  constructor(
    private readonly limits: ConnectionLimits,
    private readonly address: string,
  ) {}

  private free(): void {
    if (this.released) return;
    this.released = true;
    ConnectionLimits.giveBack(this.limits, this.address);
  }
}
/** DI token of the process-wide {@link ConnectionLimits}. */
export const ConnectionLimitsToken = Symbol.for('postern.ConnectionLimits') as ServiceIdentifier<ConnectionLimits>;
