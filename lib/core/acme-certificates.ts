import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { AcmeCertificateTarget, AcmeOptions } from './acme-options.js';

export type { AcmeChallengeType, AcmeOptions, AcmeCertificateTarget } from './acme-options.js';

/** File names under {@link AcmeOptions.stateDir}. */
const ACCOUNT_KEY = 'account-key.pem';
const CERT_FILE = 'cert.pem';
const KEY_FILE = 'key.pem';

/** setTimeout's limit (2^31 − 1 ms, ~24.8 days): longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const DAY_MS = 86_400_000;
const MAX_RETRY_MS = 3_600_000;

type AcmeModule = typeof import('acme-client');

/**
 * Obtains and renews the default certificate of a {@link ServerSecurity} from an ACME CA (RFC 8555), with
 * acme-client doing the protocol. Challenges are answered by Postern itself: TLS-ALPN-01 (RFC 8737) on every
 * implicit-TLS listener that shares the `ServerSecurity`, HTTP-01 through {@link httpChallengeResponse} when an HTTP
 * listener serves it. A stored certificate that is still fresh is used at once after a restart. A new certificate
 * is swapped in with `useCertificate` (live sessions keep theirs), so renewal drops no connection.
 *
 * Lifecycle: construct, `start()` after the listeners listen (validation connects to them), `stop()` on shutdown.
 */
export class AcmeCertificateManager {
  private readonly httpTokens = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<X509Certificate>;
  private failures = 0;

  /** Stores its inputs; nothing happens before {@link start} or {@link ensureCertificate}. */
  constructor(
    readonly options: AcmeOptions,
    private readonly security: AcmeCertificateTarget,
    private readonly log: Logger,
  ) {
    if (options.domains.length === 0) throw new Error('ACME needs at least one domain');
  }

  /** Paths of the stored certificate and key (PEM), whether or not they exist yet. */
  get files(): { certFile: string; keyFile: string } {
    return { certFile: join(this.options.stateDir, CERT_FILE), keyFile: join(this.options.stateDir, KEY_FILE) };
  }

  /**
   * Gets a certificate in use: the stored one while it is fresh, else a new one from the CA, then keeps it renewed
   * in the background. Failures are logged (with the CA's problem text) and retried with back-off; the listeners keep
   * serving the certificate they have. Resolves with the first certificate in use, or rejects with the first error
   * (renewal still goes on): callers that must not start without it await it, others ignore it.
   */
  start(): Promise<X509Certificate> {
    this.stopped = false;
    const first = this.ensureCertificate();
    first.then(
      (cert) => this.scheduleRenewal(cert),
      (err: unknown) => this.scheduleRetry(err),
    );
    return first;
  }

  /**
   * Orders a new certificate now, even if the one in use is fresh (after a suspected key compromise, or to check the
   * set-up; `postern` does this on SIGHUP), then schedules the next renewal from it. A failure is logged and retried
   * like a failed renewal; the certificate in use stays. Shares an order already running.
   */
  renewNow(): Promise<X509Certificate> {
    this.running ??= this.order().finally(() => {
      this.running = undefined;
    });
    const renewed = this.running;
    renewed.then(
      (cert) => this.scheduleRenewal(cert),
      (err: unknown) => this.scheduleRetry(err),
    );
    return renewed;
  }

  /** Stops renewing and answering challenges. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * The body an HTTP listener must answer for `GET /.well-known/acme-challenge/<token>` (RFC 8555 §8.3), or
   * undefined when no such validation is pending (answer 404).
   */
  httpChallengeResponse(path: string): string | undefined {
    const prefix = '/.well-known/acme-challenge/';
    return path.startsWith(prefix) ? this.httpTokens.get(path.slice(prefix.length)) : undefined;
  }

  /**
   * Installs the stored certificate if it covers the domains and is not due for renewal, else orders a new one.
   * Concurrent calls share one order.
   * @throws Error with the CA's problem detail when the order fails.
   */
  ensureCertificate(): Promise<X509Certificate> {
    this.running ??= this.obtain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async obtain(): Promise<X509Certificate> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    const stored = await this.storedCertificate();
    if (stored !== undefined && !this.isDue(stored)) {
      await this.install();
      this.log.info('acme certificate loaded', { subject: stored.subject, validTo: stored.validTo });
      return stored;
    }
    return this.order();
  }

  private async order(): Promise<X509Certificate> {
    const acme = await loadAcme();
    if (this.options.directoryCa !== undefined) {
      const https = await import('node:https');
      acme.axios.defaults.httpsAgent = new https.Agent({ ca: this.options.directoryCa, keepAlive: false });
    }
    const client = new acme.Client({ directoryUrl: this.options.directoryUrl, accountKey: await this.accountKey(acme) });
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: this.options.domains[0], altNames: [...this.options.domains] },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    this.log.info('acme order started', { domains: this.options.domains, directory: this.options.directoryUrl });
    const pem = await client.auto({
      csr,
      email: this.options.email,
      termsOfServiceAgreed: true,
      // We answer the challenge ourselves and know it is in place; acme-client's own pre-check would dial port 443/80.
      skipChallengeVerification: true,
      challengePriority: [...(this.options.challenges ?? ['tls-alpn-01', 'http-01'])],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const domain = authz.identifier.value;
        const type: string = challenge.type; // acme-client's type union predates RFC 8737
        if (type === 'tls-alpn-01') {
          // OpenSSL keeps one certificate per key type in a handshake: a challenge certificate of another type than the
          // default one would sit beside it instead of replacing it, and the default one could still be chosen.
          const rsa = this.security.certificate?.publicKey.asymmetricKeyType === 'rsa';
          const challengeKeyPem = rsa ? await acme.crypto.createPrivateRsaKey() : await acme.crypto.createPrivateEcdsaKey('P-256');
          const [challengeKey, challengeCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, challengeKeyPem);
          // Resolves once the challenge is answerable (a cluster primary waits for every worker) before the CA is told.
          await this.security.acmeChallenges.add(domain, challengeKey, challengeCert);
        } else if (type === 'http-01') {
          this.httpTokens.set(challenge.token, keyAuthorization);
          await this.security.acmeHttpChallenges?.add(challenge.token, keyAuthorization);
        }
        this.log.info('acme challenge ready', { domain, type });
      },
      challengeRemoveFn: async (authz, challenge) => {
        const type: string = challenge.type;
        if (type === 'tls-alpn-01') await this.security.acmeChallenges.remove(authz.identifier.value);
        else if (type === 'http-01') {
          this.httpTokens.delete(challenge.token);
          await this.security.acmeHttpChallenges?.remove(challenge.token);
        }
      },
    }).catch((err: unknown) => explainNoResponse(err, this.options));
    await writePrivate(join(this.options.stateDir, KEY_FILE), key);
    await writePrivate(join(this.options.stateDir, CERT_FILE), pem);
    await this.install();
    const cert = new X509Certificate(pem);
    this.log.info('acme certificate installed', { subject: cert.subject, issuer: cert.issuer, validTo: cert.validTo });
    return cert;
  }

  private install(): Promise<void> {
    return this.security.useCertificate(this.files);
  }

  private async accountKey(acme: AcmeModule): Promise<Buffer> {
    const path = join(this.options.stateDir, ACCOUNT_KEY);
    try {
      return await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    await writePrivate(path, key);
    return key;
  }

  private async storedCertificate(): Promise<X509Certificate | undefined> {
    try {
      const cert = new X509Certificate(await readFile(this.files.certFile));
      await readFile(this.files.keyFile);
      return this.covers(cert) ? cert : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.log.warn('acme stored certificate unusable, ordering a new one', { error: (err as Error).message });
      return undefined;
    }
  }

  private covers(cert: X509Certificate): boolean {
    const names = (cert.subjectAltName ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase());
    return this.options.domains.every((domain) => names.includes(domain.toLowerCase()));
  }

  /** When renewal is due: `renewBeforeDays` before expiry, but at most a third of the certificate's lifetime. */
  private renewAt(cert: X509Certificate): number {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const before = Math.min((this.options.renewBeforeDays ?? 30) * DAY_MS, (to - from) / 3);
    return to - before;
  }

  private isDue(cert: X509Certificate): boolean {
    return Date.now() >= this.renewAt(cert);
  }

  private scheduleRenewal(cert: X509Certificate): void {
    this.failures = 0;
    this.wakeAt(this.renewAt(cert));
  }

  private scheduleRetry(err: unknown): void {
    this.failures++;
    const delay = Math.min((this.options.retryDelayMs ?? 60_000) * 2 ** (this.failures - 1), MAX_RETRY_MS);
    this.log.error('acme certificate order failed', { error: err instanceof Error ? err.message : String(err), retryInMs: delay });
    this.wakeAt(Date.now() + delay);
  }

  private wakeAt(when: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, when - Date.now());
    this.timer = setTimeout(() => {
      if (wait > MAX_TIMER_MS) return this.wakeAt(when);
      this.ensureCertificate().then(
        (cert) => this.scheduleRenewal(cert),
        (err: unknown) => this.scheduleRetry(err),
      );
    }, Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }
}

/** acme-client (and its crypto and HTTP stack) loads only when ACME is configured, to keep `import 'postern'` fast. */
async function loadAcme(): Promise<AcmeModule> {
  const mod = (await import('acme-client')) as AcmeModule & { default?: AcmeModule };
  return mod.default ?? mod;
}

/**
 * acme-client (5.4, its issue #101) fails with "Cannot read properties of undefined (reading 'config')" when a request
 * got no HTTP response at all (connection refused or reset, timeout, a CA certificate that does not verify) once its
 * retries are spent; the network error itself is lost. This replaces that text with one an operator can act on, with
 * the reason of one plain GET of the directory (same trust) when that fails too. Other errors pass through as they are.
 */
async function explainNoResponse(err: unknown, options: AcmeOptions): Promise<never> {
  if (!(err instanceof TypeError) || !err.message.includes("(reading 'config')")) throw err;
  const reason = await directoryFailure(options.directoryUrl, options.directoryCa);
  throw new Error(`no HTTP response from the ACME CA (${options.directoryUrl}${reason === undefined ? '' : `: ${reason}`})`, { cause: err });
}

/** Why a GET of `url` gets no HTTP response (the error's message), or undefined when it gets one. At most 10 s. */
async function directoryFailure(url: string, ca: AcmeOptions['directoryCa']): Promise<string | undefined> {
  const client = url.startsWith('http:') ? await import('node:http') : await import('node:https');
  return new Promise((resolve) => {
    try {
      const request = client.get(url, { ca, agent: false, timeout: 10_000 }, (response) => {
        response.resume();
        resolve(undefined);
      });
      request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
      request.on('error', (e) => resolve(e.message));
    } catch (e) {
      resolve((e as Error).message); // an unusable URL
    }
  });
}

/** Writes a secret file atomically with mode 0600 (temp file + rename). */
async function writePrivate(path: string, data: string | Buffer): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, data, { mode: 0o600 });
  await rename(temporary, path);
}
