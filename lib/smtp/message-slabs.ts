/**
 * Buffers for stored messages: small ones cut from shared slabs, whose memory is touched ahead of use outside the
 * reply's critical path.
 *
 * Why slabs (issue 15): one ArrayBuffer, with its backing store and its entry for the garbage collector (which every
 * major collection visits and sweeps), per few dozen messages instead of per message, and memory that can be touched
 * ahead of the copy (below). Like Node's own pool for Buffers under 4 KB, a cut keeps its slab alive. A store that
 * writes messages out and drops them gets 256 KB slabs, freed soon after.
 *
 * Why arenas for a store that keeps its messages (`MailStore.keepsMessageBuffers`): V8 (Node 20) counts every
 * octet of ArrayBuffer memory allocated since its last full collection against the old generation's limit, and on a
 * heap of a few dozen MB that headroom is a few MB. A memory store keeping 10 KB per message in 256 KB slabs
 * started a full collection every few hundred messages (about 20 per 10,000, each marking the whole heap). Slabs of
 * 64 MB are counted once, when allocated, and the messages cut from them afterwards are not counted at all: 3 full
 * collections per 10,000. Untouched slab memory costs address space, not resident memory.
 *
 * Why touching ahead: the first write to a fresh page of memory is a page fault, and the kernel zeroes the page
 * before the copy can go on. Copying a 10 KB message into new slab memory made about three such faults, inside the
 * copy that stands between the message's last octet and its `250` (measured at about a quarter of that path on a
 * pipelined session). {@link MessageSlabs.take} schedules {@link MessageSlabs.prefault} with `setImmediate`, which
 * runs after the turn's replies are written: the faults are still paid, but while the client reads its replies
 * rather than while it waits for them.
 */
export class MessageSlabs {
  /**
   * The slab the next message is cut from, held weakly: once every message cut from it is gone (and the store that
   * kept them), it can be collected even while it is the current one. A process that dropped its memory store keeps
   * no arena of resident memory.
   */
  private slab?: WeakRef<ArrayBuffer>;
  /** Octets of {@link slab} handed out (8-octet aligned). */
  private used = 0;
  /** Where the next touch of {@link slab} goes: pages before it are faulted in (a multiple of {@link PAGE}). */
  private touched = 0;
  /** The slab after {@link slab}, made by {@link prefault} when the touching runs past the current one's end. */
  private spare?: ArrayBuffer;
  private spareTouched = 0;
  private scheduled = false;
  /** How far past {@link used} the next prefault touches: {@link ahead} plus the last message's size. */
  private reach: number;

  constructor(
    /** Octets of one slab. */
    readonly slabSize = SLAB_SIZE,
    /** Messages above this size get a Buffer of their own. */
    readonly messageMax = SLAB_MESSAGE_MAX,
    /** How far past {@link used} the pages are kept touched. */
    readonly ahead = TOUCH_AHEAD,
  ) {
    this.reach = ahead;
  }

  /** A Buffer of `size` octets for one stored message (its contents are undefined until written). */
  take(size: number): Buffer {
    if (size > this.messageMax) return Buffer.allocUnsafe(size);
    let slab = this.slab?.deref();
    if (slab === undefined || this.used + size > this.slabSize) slab = this.nextSlab();
    const part = Buffer.from(slab, this.used, size);
    this.used += (size + 7) & ~7; // 8-octet aligned, as Node's pool
    // Touch room for one more message like this one (a 1 MB message is a quarter of a thousand pages).
    this.reach = this.ahead + size;
    if (!this.scheduled && this.touched < this.used + this.reach / 2) {
      this.scheduled = true;
      setImmediate(runPrefault, this);
    }
    return part;
  }

  /**
   * Faults in the pages from the write position to {@link ahead} octets plus the last message's size past it,
   * continuing into a spare slab at the end of this one. It writes only past {@link used}: octets handed out are
   * never touched.
   */
  prefault(): void {
    this.scheduled = false;
    const target = this.used + this.reach;
    const slab = this.slab?.deref();
    if (slab !== undefined) {
      const from = Math.max(this.touched, alignUp(this.used, PAGE));
      this.touched = touchPages(slab, from, Math.min(target, this.slabSize));
    }
    if (target > this.slabSize) {
      this.spare ??= newSlab(this.slabSize);
      this.spareTouched = touchPages(this.spare, this.spareTouched, target - this.slabSize);
    }
  }

  private nextSlab(): ArrayBuffer {
    let slab: ArrayBuffer;
    if (this.spare !== undefined) {
      slab = this.spare;
      this.touched = this.spareTouched;
      this.spare = undefined;
      this.spareTouched = 0;
    } else {
      slab = newSlab(this.slabSize);
      this.touched = 0;
    }
    this.slab = new WeakRef(slab);
    this.used = 0;
    return slab;
  }
}

/** Messages up to this size share a {@link SLAB_SIZE} slab with others (RFC 5322 mail is mostly smaller). */
export const SLAB_MESSAGE_MAX = 16 * 1024;
/** The ArrayBuffer small messages are cut from: a few dozen messages of a few KB each. */
export const SLAB_SIZE = 256 * 1024;
/** The slab of a store that keeps its messages: counted once by V8, then about 6,000 messages of 10 KB. */
export const ARENA_SIZE = 64 * 1024 * 1024;
/** Messages up to this size are cut from an arena (at most 1/16 of one is left unused at its end). */
export const ARENA_MESSAGE_MAX = 4 * 1024 * 1024;
/** Four small messages' worth: the next message's copy finds its pages faulted in. */
const TOUCH_AHEAD = 64 * 1024;
/** The smallest page size of the platforms Node runs on (a larger page is simply touched more than once). */
const PAGE = 4096;

function runPrefault(slabs: MessageSlabs): void {
  slabs.prefault();
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A slab's memory, not yet touched (`Buffer.allocUnsafeSlow`: an ArrayBuffer of its own, not from Node's pool). */
function newSlab(size: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
}

/** Writes one octet per {@link PAGE} in `[from, to)`, stepping from `from`; returns where the next step would be. */
function touchPages(slab: ArrayBuffer, from: number, to: number): number {
  if (from >= to) return from;
  const octets = new Uint8Array(slab);
  let at = from;
  for (; at < to; at += PAGE) octets[at] = 0;
  return at;
}
