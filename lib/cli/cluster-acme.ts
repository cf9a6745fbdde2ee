/**
 * ACME under `postern --workers N`: the primary runs the one {@link AcmeCertificateManager} (one account, one order,
 * one renewal schedule, one state directory) and this relay is its target. It answers nothing itself: every
 * TLS-ALPN-01 challenge certificate and every issued certificate goes to every worker over cluster IPC, and the
 * manager's "challenge ready" waits until each worker said it applied it, so the CA's validation connection is
 * answered by whichever worker the primary hands it to. A worker (re)started later gets the current certificate and
 * the pending challenges in its init message.
 */
import type { Worker } from 'node:cluster';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import type { AcmeCertificateTarget } from '../core/acme-certificates.js';
import { CertificateError, type CertificateSource } from '../core/server-security.js';
import type { Logger } from '../log/logger.js';
import type { AcmeChallenge, AcmeChallengeMessage, AcmeHttpMessage, AppliedMessage, CertificateMessage } from './cluster-messages.js';

/**
 * How long the relay waits for the workers to apply a change before going on without the slow ones (logged at warn).
 * A worker applies a challenge in microseconds and a certificate in milliseconds; a worker that takes this long is
 * stuck, and the CA's validation (or the next restart) tells whether it mattered.
 */
export const APPLY_TIMEOUT_MS = 10_000;

interface Pending {
  readonly waiting: Set<Worker>;
  readonly done: () => void;
}

/** The primary's {@link AcmeCertificateTarget}: forwards challenges and certificates to every joined worker. */
export class ClusterAcmeRelay implements AcmeCertificateTarget {
  private current: { cert: string; key: string };
  private leaf: X509Certificate;
  private readonly pendingChallenges = new Map<string, AcmeChallenge>();
  private readonly pendingHttp = new Map<string, string>();
  private readonly joinedWorkers = new Set<Worker>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** @param initial the certificate the workers start with (the generated one until ACME delivers). */
  constructor(
    initial: { cert: string; key: string },
    private readonly log: Logger,
  ) {
    this.current = initial;
    this.leaf = new X509Certificate(initial.cert);
  }

  /** The certificate every worker serves now (PEM); a worker's init message carries it. */
  get currentPem(): { cert: string; key: string } {
    return this.current;
  }

  /** The leaf of {@link currentPem} (the manager picks the challenge key type from it). */
  get certificate(): X509Certificate {
    return this.leaf;
  }

  /** TLS-ALPN-01 validations pending now (for a worker's init message). */
  get challenges(): AcmeChallenge[] {
    return [...this.pendingChallenges.values()];
  }

  /** HTTP-01 validations pending now, `[token, keyAuthorization]` (for a worker's init message). */
  get httpChallenges(): Array<[string, string]> {
    return [...this.pendingHttp];
  }

  /** HTTP-01 (answered by the workers' HTTP listeners): add/remove resolve once every joined worker applied them. */
  readonly acmeHttpChallenges = {
    add: (token: string, keyAuthorization: string): Promise<void> => {
      this.pendingHttp.set(token, keyAuthorization);
      return this.push({ postern: 'acme-http', id: this.nextId++, token, keyAuthorization }, 'http-01 token');
    },
    remove: (token: string): Promise<void> => {
      this.pendingHttp.delete(token);
      return this.push({ postern: 'acme-http', id: this.nextId++, token }, 'http-01 token removed');
    },
  };

  /** Add/remove resolve once every joined worker answers (or stopped answering) the validation. */
  readonly acmeChallenges = {
    add: (domain: string, key: string | Buffer, cert: string | Buffer): Promise<void> => {
      const challenge = { domain, key: key.toString(), cert: cert.toString() };
      this.pendingChallenges.set(domain, challenge);
      return this.push({ postern: 'acme-challenge', id: this.nextId++, domain, challenge }, `challenge ${domain}`);
    },
    remove: (domain: string): Promise<void> => {
      this.pendingChallenges.delete(domain);
      return this.push({ postern: 'acme-challenge', id: this.nextId++, domain }, `challenge ${domain} removed`);
    },
  };

  /**
   * Checks the certificate here (so one bad file never reaches the workers), makes it the current one and resolves
   * once every joined worker serves it.
   * @throws CertificateError when the certificate and key do not make a TLS context; nothing is sent then.
   */
  async useCertificate(source: CertificateSource): Promise<void> {
    let pem: { cert: string; key: string };
    if ('certFile' in source) pem = { cert: await readFile(source.certFile, 'utf8'), key: await readFile(source.keyFile, 'utf8') };
    else if ('cert' in source) pem = { cert: source.cert.toString(), key: source.key.toString() };
    else throw new CertificateError('the cluster relays PEM certificates only');
    let leaf: X509Certificate;
    try {
      tls.createSecureContext(pem);
      leaf = new X509Certificate(pem.cert);
    } catch (err) {
      throw new CertificateError(`unusable certificate: ${(err as Error).message}`);
    }
    this.current = pem;
    this.leaf = leaf;
    await this.push({ postern: 'certificate', id: this.nextId++, ...pem }, 'certificate');
  }

  /** A worker got its init message (with {@link currentPem} and {@link challenges}): it gets every later change. */
  joined(worker: Worker): void {
    this.joinedWorkers.add(worker);
  }

  /** A worker exited: nothing more is sent to it or awaited from it. */
  left(worker: Worker): void {
    this.joinedWorkers.delete(worker);
    for (const [id, p] of this.pending) {
      p.waiting.delete(worker);
      if (p.waiting.size === 0) this.settle(id);
    }
  }

  /** A worker's {@link AppliedMessage}. */
  applied(worker: Worker, m: AppliedMessage): void {
    const p = this.pending.get(m.id);
    if (m.error !== undefined) this.log.error('worker could not apply an acme change', { worker: worker.id, pid: worker.process.pid, error: m.error });
    if (!p) return;
    p.waiting.delete(worker);
    if (p.waiting.size === 0) this.settle(m.id);
  }

  private settle(id: number): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.done();
  }

  private push(m: AcmeChallengeMessage | AcmeHttpMessage | CertificateMessage, what: string): Promise<void> {
    const waiting = new Set([...this.joinedWorkers].filter((w) => w.isConnected()));
    if (waiting.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const slow = [...(this.pending.get(m.id)?.waiting ?? [])].map((w) => w.process.pid);
        this.log.warn('workers did not apply an acme change in time', { change: what, pids: slow, timeoutMs: APPLY_TIMEOUT_MS });
        this.settle(m.id);
      }, APPLY_TIMEOUT_MS);
      timer.unref();
      this.pending.set(m.id, {
        waiting,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      for (const w of waiting) w.send(m);
    });
  }
}
