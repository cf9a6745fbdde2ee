import { readFileSync, statSync } from 'node:fs';
import type { CertificateSource, ServerSecurityOptions } from '../core/server-security.js';
import { assertAlpnProtocols, assertGroups } from '../core/server-security-options.js';
import { parseSslProtocols, protocolsFrom } from '../core/ssl-protocols.js';

/**
 * TLS flags that may target one listener with `VALUE@LISTENER` (`--client-cert require@imaps`, `--cert FILE@smtps`).
 * Without `@LISTENER` a flag sets the shared TLS configuration; a value that itself contains `@` ends with a bare `@`
 * (`--passphrase 'p@ss@'`).
 */
export const TARGETABLE_TLS_FLAGS = ['cert', 'key', 'pfx', 'passphrase', 'ca', 'client-cert', 'tls-min', 'tls-groups', 'tls-alpn', 'cert-dir'] as const;
/** One of {@link TARGETABLE_TLS_FLAGS}. */
export type TlsFlag = (typeof TARGETABLE_TLS_FLAGS)[number];
/** The values of the TLS flags, at most one per flag. */
export type TlsFlagValues = Partial<Record<TlsFlag, string>>;

/** The TLS flags of a command line: shared ones, and per listener the ones aimed at it. */
export interface SplitTlsFlags {
  readonly shared: TlsFlagValues;
  readonly listeners: Readonly<Record<string, TlsFlagValues>>;
}

/** True for a flag name in {@link TARGETABLE_TLS_FLAGS}. */
export function isTlsFlag(name: string): name is TlsFlag {
  return (TARGETABLE_TLS_FLAGS as readonly string[]).includes(name);
}

/**
 * Splits `VALUE@LISTENER` occurrences of the TLS flags (parsed with `multiple: true`).
 * @param known listener names that have TLS (the mail listeners).
 * @param started listener names the command starts (`--only`).
 * @throws Error naming the flag for an unknown or not started listener, or a flag given twice for one target.
 */
export function splitTlsFlags(values: Readonly<Record<string, unknown>>, known: readonly string[], started: readonly string[]): SplitTlsFlags {
  const shared: TlsFlagValues = {};
  const listeners: Record<string, TlsFlagValues> = {};
  for (const flag of TARGETABLE_TLS_FLAGS) {
    const given = values[flag];
    for (const raw of given === undefined ? [] : Array.isArray(given) ? (given as string[]) : [String(given)]) {
      const { value, target } = splitTarget(raw);
      if (target !== undefined) {
        if (!known.includes(target)) throw new Error(`--${flag} ${raw}: unknown listener "${target}" (use ${known.join(', ')})`);
        if (!started.includes(target)) throw new Error(`--${flag} ${raw}: ${target} is not started (see --only)`);
      }
      const bucket = target === undefined ? shared : (listeners[target] ??= {});
      if (bucket[flag] !== undefined) throw new Error(`--${flag} given twice${target === undefined ? '' : ` for ${target}`}`);
      bucket[flag] = value;
    }
  }
  return { shared, listeners };
}

/** `FILE@imaps` → target `imaps`; `p@ss@` → the value `p@ss`, no target; a suffix that is not a name stays part of the value. */
function splitTarget(raw: string): { value: string; target?: string } {
  const at = raw.lastIndexOf('@');
  if (at < 0) return { value: raw };
  const suffix = raw.slice(at + 1);
  if (suffix === '') return { value: raw.slice(0, at) };
  if (/^[a-z][a-z0-9-]*$/i.test(suffix)) return { value: raw.slice(0, at), target: suffix.toLowerCase() };
  return { value: raw };
}

/**
 * One listener's own TLS settings from the flags aimed at it, holding only the fields those flags set (the rest is
 * inherited from the shared configuration). `--client-cert` also takes `none` here (no client certificate on that
 * listener though the shared setting asks for one).
 * @throws Error for flags that do not go together or a file that cannot be read.
 */
export function listenerTlsOptions(flags: TlsFlagValues, listener: string, shared: ServerSecurityOptions): ServerSecurityOptions {
  const at = `@${listener}`;
  const { cert, key, pfx, passphrase } = flags;
  if ((cert && !key) || (key && !cert)) throw new Error(`--cert${at} and --key${at} go together`);
  if (pfx && cert) throw new Error(`use either --cert/--key or --pfx for ${listener}, not both`);
  if (passphrase !== undefined && !pfx && !key && !flags['cert-dir']) throw new Error(`--passphrase${at} needs --pfx${at}, --key${at} or --cert-dir${at}`);
  const out: ServerSecurityOptions = {};
  let certificate: CertificateSource | undefined;
  if (cert && key) certificate = { cert: read(cert, `--cert${at}`).toString('utf8'), key: read(key, `--key${at}`).toString('utf8'), passphrase };
  else if (pfx) certificate = { pfx: read(pfx, `--pfx${at}`), passphrase };
  if (certificate) out.certificate = certificate;
  if (flags['cert-dir'] !== undefined) out.certificateStore = certificateDirectory(flags['cert-dir'], `--cert-dir${at}`, passphrase);
  if (flags.ca !== undefined) out.trustedCertificates = read(flags.ca, `--ca${at}`).toString('utf8');
  const clientCert = flags['client-cert'];
  if (clientCert !== undefined) {
    if (!['request', 'require', 'none'].includes(clientCert)) throw new Error(`--client-cert${at}: expected request, require or none, got "${clientCert}"`);
    if (clientCert !== 'none' && out.trustedCertificates === undefined && shared.trustedCertificates === undefined) {
      throw new Error(`--client-cert ${clientCert}${at} needs --ca FILE or --ca FILE${at} (the CA that signs client certificates)`);
    }
    out.requestClientCertificate = clientCert !== 'none';
    out.requireClientCertificate = clientCert === 'require';
  }
  const tlsMin = flags['tls-min'];
  if (tlsMin !== undefined) {
    if (tlsMin !== '1.2' && tlsMin !== '1.3') throw new Error(`--tls-min${at}: expected 1.2 or 1.3, got "${tlsMin}"`);
    out.protocols = protocolsFrom(parseSslProtocols(tlsMin));
  }
  if (flags['tls-groups'] !== undefined) out.groups = tlsGroups(flags['tls-groups'], `--tls-groups${at}`);
  if (flags['tls-alpn'] !== undefined) out.alpnProtocols = tlsAlpn(flags['tls-alpn'], `--tls-alpn${at}`);
  return out;
}

/**
 * `--tls-alpn LIST|none`: comma-separated ALPN ids replacing the protocol's own, or `none` (ALPN off).
 * @throws Error naming the flag and the id that is not one.
 */
export function tlsAlpn(value: string, flag: string): readonly string[] | false {
  if (value === 'none') return false;
  const ids = value.split(',');
  assertAlpnProtocols(ids, flag);
  return ids;
}

/**
 * `--tls-groups LIST`, checked against this Node's OpenSSL now (a typo is a usage error, not a listener that fails).
 * @throws Error naming the flag and the group OpenSSL does not know.
 */
export function tlsGroups(list: string, flag: string): string {
  assertGroups(list, flag);
  return list;
}

/**
 * The config sections carrying each targeted listener's `security`: `{ imap: { imaps: { security } } }` (a listener's
 * section is its name without the trailing `s` of the implicit-TLS variant).
 */
export function listenerTlsSections(split: SplitTlsFlags, shared: ServerSecurityOptions): Record<string, Record<string, { security: ServerSecurityOptions }>> {
  const sections: Record<string, Record<string, { security: ServerSecurityOptions }>> = {};
  for (const [listener, flags] of Object.entries(split.listeners)) {
    const section = listener.replace(/s$/, '');
    (sections[section] ??= {})[listener] = { security: listenerTlsOptions(flags, listener, shared) };
  }
  return sections;
}

/**
 * `--cert-dir DIR`: the certificate store options for a directory that exists (checked now, so a typo is a usage
 * error rather than a failed listener).
 * @throws Error naming the flag when DIR is not a readable directory.
 */
export function certificateDirectory(directory: string, flag: string, passphrase: string | undefined): { directory: string; passphrase?: string } {
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch (err) {
    throw new Error(`${flag}: cannot read ${directory} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!isDirectory) throw new Error(`${flag}: ${directory} is not a directory`);
  return passphrase === undefined ? { directory } : { directory, passphrase };
}

function read(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
