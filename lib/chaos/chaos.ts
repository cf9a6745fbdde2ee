import type { ServiceIdentifier } from 'inversify';
import { FAULT_STAGES, type FaultAction, type FaultInjector, type FaultStage } from '../protocol/faults.js';

/** Protocols a rule may name. */
export type ChaosProtocol = 'smtp' | 'lmtp' | 'pop3' | 'imap';
const PROTOCOLS: readonly ChaosProtocol[] = ['smtp', 'lmtp', 'pop3', 'imap'];
/** Actions a rule may take (`reply` when only `reply` is given). */
export type ChaosActionName = 'reply' | 'delay' | 'disconnect' | 'tls-abort' | 'throttle';
const ACTIONS: readonly ChaosActionName[] = ['reply', 'delay', 'disconnect', 'tls-abort', 'throttle'];

/**
 * One fault rule (the body of `PUT /api/v1/chaos`, `startMailServer({ chaos })`, `--chaos`):
 * `{ "protocol": "smtp", "stage": "rcpt", "reply": "451 4.3.0 try later", "probability": 1, "times": 3, "match": "*@example.test" }`.
 */
export interface ChaosRule {
  readonly protocol: ChaosProtocol;
  readonly stage: FaultStage;
  /** `reply` (default when `reply` is set), `delay`, `disconnect`, `tls-abort` (stage `starttls` only), `throttle`. */
  readonly action?: ChaosActionName;
  /** The line to send (SMTP `4xx`/`5xx …`, POP3 `-ERR …`, IMAP `NO …`/`BAD …`/`BYE …`). SMTP `421` closes the session. */
  readonly reply?: string;
  /** For `delay`: milliseconds (≤ 600000). */
  readonly delayMs?: number;
  /** For `throttle`: octets per second the server writes to this client from then on (≥ 1). */
  readonly bytesPerSecond?: number;
  /** Chance in [0, 1] that the rule fires when it matches (default 1). */
  readonly probability?: number;
  /** How many times it may fire before it retires (default: no limit). */
  readonly times?: number;
  /** Address or login pattern, `*` matching any run of characters, case-insensitive (`*@example.test`). */
  readonly match?: string;
}

/** A whole chaos configuration. */
export interface ChaosConfig {
  readonly rules: readonly ChaosRule[];
  /** Seed of the random draws, so that a run repeats (default: random). */
  readonly seed?: number;
}

/** A rule as reported back: with what it has done. */
export interface ChaosRuleState extends ChaosRule {
  /** Times it fired. */
  readonly fired: number;
}

/** Thrown for a configuration that is not valid; `message` names the field (`rules[0].stage: …`). */
export class ChaosConfigError extends Error {
  override readonly name = 'ChaosConfigError';
}

/** Longest delay a rule may ask for: ten minutes (a test that needs more is waiting for a timeout, not a delay). */
export const MAX_CHAOS_DELAY_MS = 600_000;
/** Most rules in one configuration. */
export const MAX_CHAOS_RULES = 100;

/** The reply shape each protocol needs, so that an injected reply is a real reply of that protocol. */
const REPLY_SHAPE: Readonly<Record<ChaosProtocol, RegExp>> = {
  smtp: /^[45]\d\d[ -]/, // RFC 5321 §4.2: refusals are 4yz or 5yz
  lmtp: /^[45]\d\d[ -]/, // RFC 2033: SMTP's replies
  pop3: /^-ERR( |$)/, // RFC 1939 §3
  imap: /^(NO|BAD|BYE)( |$)/, // RFC 3501 §7.1
};

/**
 * Validates a chaos configuration from untrusted input (JSON, CLI, options).
 * @throws ChaosConfigError naming the first bad field.
 */
export function parseChaosConfig(input: unknown): ChaosConfig {
  if (!isObject(input)) throw new ChaosConfigError('expected an object { "rules": [...], "seed"?: number }');
  for (const k of Object.keys(input)) if (k !== 'rules' && k !== 'seed') throw new ChaosConfigError(`unknown field "${k}"`);
  const { rules, seed } = input;
  if (!Array.isArray(rules)) throw new ChaosConfigError('rules: expected an array');
  if (rules.length > MAX_CHAOS_RULES) throw new ChaosConfigError(`rules: at most ${MAX_CHAOS_RULES}`);
  if (seed !== undefined && (!Number.isSafeInteger(seed) || (seed as number) < 0)) throw new ChaosConfigError('seed: expected a non-negative integer');
  return { rules: rules.map((r, i) => parseRule(r, `rules[${i}]`)), ...(seed !== undefined ? { seed: seed as number } : {}) };
}

const RULE_FIELDS = new Set(['protocol', 'stage', 'action', 'reply', 'delayMs', 'bytesPerSecond', 'probability', 'times', 'match']);

function parseRule(r: unknown, at: string): ChaosRule {
  if (!isObject(r)) throw new ChaosConfigError(`${at}: expected an object`);
  for (const k of Object.keys(r)) if (!RULE_FIELDS.has(k)) throw new ChaosConfigError(`${at}: unknown field "${k}"`);
  const protocol = r.protocol as ChaosProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new ChaosConfigError(`${at}.protocol: expected one of ${PROTOCOLS.join(', ')}`);
  const stage = r.stage as FaultStage;
  if (!FAULT_STAGES.includes(stage)) throw new ChaosConfigError(`${at}.stage: expected one of ${FAULT_STAGES.join(', ')}`);
  const action = (r.action ?? (r.reply !== undefined ? 'reply' : undefined)) as ChaosActionName | undefined;
  if (action === undefined) throw new ChaosConfigError(`${at}: needs "reply" or "action"`);
  if (!ACTIONS.includes(action)) throw new ChaosConfigError(`${at}.action: expected one of ${ACTIONS.join(', ')}`);
  const out: Record<string, unknown> = { protocol, stage, action };
  if (action === 'reply') {
    const reply = r.reply;
    if (typeof reply !== 'string' || reply.length === 0 || reply.length > 512 || /[\r\n\0]/.test(reply)) {
      throw new ChaosConfigError(`${at}.reply: expected one line of at most 512 characters`);
    }
    if (!REPLY_SHAPE[protocol].test(reply)) throw new ChaosConfigError(`${at}.reply: not a ${protocol} refusal (expected ${REPLY_SHAPE[protocol].source})`);
    out.reply = reply;
  } else if (r.reply !== undefined) throw new ChaosConfigError(`${at}.reply: only for action "reply"`);
  if (action === 'delay') {
    if (!Number.isSafeInteger(r.delayMs) || (r.delayMs as number) < 0 || (r.delayMs as number) > MAX_CHAOS_DELAY_MS) {
      throw new ChaosConfigError(`${at}.delayMs: expected an integer from 0 to ${MAX_CHAOS_DELAY_MS}`);
    }
    out.delayMs = r.delayMs;
  }
  if (action === 'throttle') {
    if (!Number.isSafeInteger(r.bytesPerSecond) || (r.bytesPerSecond as number) < 1) throw new ChaosConfigError(`${at}.bytesPerSecond: expected a positive integer`);
    out.bytesPerSecond = r.bytesPerSecond;
  }
  if (action === 'tls-abort' && stage !== 'starttls') throw new ChaosConfigError(`${at}.action: tls-abort applies to stage "starttls" only`);
  if (r.probability !== undefined) {
    if (typeof r.probability !== 'number' || !(r.probability >= 0 && r.probability <= 1)) throw new ChaosConfigError(`${at}.probability: expected a number from 0 to 1`);
    out.probability = r.probability;
  }
  if (r.times !== undefined) {
    if (!Number.isSafeInteger(r.times) || (r.times as number) < 1) throw new ChaosConfigError(`${at}.times: expected a positive integer`);
    out.times = r.times;
  }
  if (r.match !== undefined) {
    if (typeof r.match !== 'string' || r.match.length === 0 || r.match.length > 256) throw new ChaosConfigError(`${at}.match: expected a pattern of 1 to 256 characters`);
    out.match = r.match;
  }
  return out as unknown as ChaosRule;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `*@example.test` → a case-insensitive anchored RegExp where only `*` is special. */
function patternRegExp(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
}

/** mulberry32: a small seeded PRNG (32-bit state), enough to make chaos runs repeat. Returns draws in [0, 1). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface LiveRule {
  readonly rule: ChaosRule;
  readonly pattern?: RegExp;
  fired: number;
}

/**
 * The test double's fault injector ("chaos", after Mailpit's Chaos and MailHog's Jim): rules by protocol, stage and
 * address pattern, each with an action, a probability and a count. The first rule that matches and wins its draw
 * fires. Changeable at any time ({@link set}, {@link clear}); sessions see the change at their next stage.
 */
export class Chaos implements FaultInjector {
  private rules: LiveRule[] = [];
  private seed?: number;
  private random: () => number = Math.random;
  private total = 0;
  private readonly changeListeners = new Set<(config: ChaosConfig) => void>();

  /** @param initial a configuration to start with (validated). */
  constructor(initial?: unknown) {
    if (initial !== undefined) this.set(initial);
  }

  /**
   * Replaces every rule (counts start again) and reseeds.
   * @throws ChaosConfigError for an invalid configuration (the current rules then stay).
   */
  set(input: unknown): ChaosConfig {
    const config = parseChaosConfig(input);
    this.rules = config.rules.map((rule) => ({ rule, pattern: rule.match !== undefined ? patternRegExp(rule.match) : undefined, fired: 0 }));
    this.seed = config.seed;
    this.random = config.seed !== undefined ? seededRandom(config.seed) : Math.random;
    for (const listener of this.changeListeners) listener(config);
    return config;
  }

  /**
   * Calls `listener` with the new configuration after every {@link set} or {@link clear} (a cluster worker forwards
   * it to the others). Returns the unsubscribe function.
   */
  onChange(listener: (config: ChaosConfig) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Removes every rule. */
  clear(): void {
    this.set({ rules: [] });
  }

  /** Faults injected since this instance was made, across every configuration (a Prometheus counter). */
  get injectedTotal(): number {
    return this.total;
  }

  /** The rules with how often each fired, and the seed. */
  get state(): { rules: ChaosRuleState[]; seed?: number } {
    return { rules: this.rules.map((l) => ({ ...l.rule, fired: l.fired })), ...(this.seed !== undefined ? { seed: this.seed } : {}) };
  }

  decide(protocol: string, stage: FaultStage, subjects: readonly string[], applies?: (action: FaultAction) => boolean): FaultAction | undefined {
    for (const l of this.rules) {
      const r = l.rule;
      if (r.protocol !== protocol || r.stage !== stage) continue;
      if (applies && !applies(toAction(r))) continue;
      if (r.times !== undefined && l.fired >= r.times) continue;
      if (l.pattern && !subjects.some((s) => l.pattern!.test(s))) continue;
      // A draw only for rules that may fire, so a seeded run repeats whatever else the sessions do.
      if (r.probability !== undefined && r.probability < 1 && this.random() >= r.probability) continue;
      l.fired++;
      this.total++;
      return toAction(r);
    }
    return undefined;
  }
}
/** DI token of the {@link Chaos} instance (also bound as the `FaultInjector`). */
export const ChaosToken = Symbol.for('postern.Chaos') as ServiceIdentifier<Chaos>;

function toAction(r: ChaosRule): FaultAction {
  switch (r.action ?? 'reply') {
    case 'reply':
      return { kind: 'reply', text: r.reply ?? '' };
    case 'delay':
      return { kind: 'delay', ms: r.delayMs ?? 0 };
    case 'disconnect':
      return { kind: 'disconnect' };
    case 'tls-abort':
      return { kind: 'tls-abort' };
    case 'throttle':
      return { kind: 'throttle', bytesPerSecond: r.bytesPerSecond ?? 1 };
  }
}
