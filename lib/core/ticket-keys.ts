import { hkdfSync, randomBytes } from 'node:crypto';

/**
 * TLS session-ticket keys (RFC 5077 §4, RFC 8446 §4.6.1): the secret with which a server seals the session state it
 * hands to clients as a ticket, so that a later handshake can resume without a full key exchange. Every process
 * that should resume another's tickets (cluster workers, nodes behind one load balancer) must hold the same keys.
 */

/** Node's key set: 16 bytes key name, 16 bytes HMAC secret, 16 bytes AES key (`tls.Server#setTicketKeys`). */
export const TICKET_KEY_BYTES = 48;

/**
 * How often keys are replaced: long-lived ticket keys undo forward secrecy for every session they sealed (RFC 8446
 * §8.1 and RFC 5077 §5.5 advise rotating them); 12 h keeps the exposure to half a day at the cost of one full
 * handshake per returning client per rotation.
 */
export const TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;

/** A fresh random key set. */
export function generateTicketKeys(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/**
 * Replaces ticket keys on a schedule: calls `onRotate` with a new key set every `intervalMs`. The timer does not
 * keep the process alive. Started by {@link start}, stopped by {@link stop} (idempotent).
 */
export class TicketKeyRotation {
  private timer?: NodeJS.Timeout;
  private keys: Buffer;

  /** @param initial the first key set (default: random). */
  constructor(
    private readonly intervalMs: number,
    private readonly onRotate: (keys: Buffer) => void,
    initial: Buffer = generateTicketKeys(),
  ) {
    assertTicketKeys(initial);
    this.keys = initial;
  }

  /** The key set in force. */
  get current(): Buffer {
    return this.keys;
  }

  /** Starts the schedule (no-op when already started or when `intervalMs` is 0). */
  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    this.timer = setInterval(() => this.rotate(), this.intervalMs);
    this.timer.unref();
  }

  /** Generates and announces a new key set now. */
  rotate(): Buffer {
    this.keys = generateTicketKeys();
    this.onRotate(this.keys);
    return this.keys;
  }

  /** Stops the schedule. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** @throws RangeError unless `keys` is a Buffer of {@link TICKET_KEY_BYTES} bytes. */
export function assertTicketKeys(keys: Buffer): void {
  if (!Buffer.isBuffer(keys) || keys.length !== TICKET_KEY_BYTES) throw new RangeError(`session ticket keys must be ${TICKET_KEY_BYTES} bytes`);
}

/**
 * Ticket keys of a derived configuration: HKDF-SHA256 (RFC 5869) of the parent's keys, labelled. Used by
 * `ServerSecurity.derive()`, so that a ticket never resumes under a configuration other than the one that issued it.
 */
export function derivedTicketKeys(parent: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', parent, Buffer.alloc(0), `postern ticket keys ${label}`, parent.length));
}
