import type { SecureVersion } from 'node:tls';

/**
 * TLS protocol versions a listener or client may negotiate, as combinable flags with the values of .NET's
 * `SslProtocols`. The default is `Tls12 | Tls13`. Older versions are only used when set explicitly (and then
 * OpenSSL's security level is lowered for that context, since Node refuses them otherwise).
 */
export enum SslProtocols {
  None = 0,
  Tls = 192,
  Tls11 = 768,
  Tls12 = 3072,
  Tls13 = 12288,
}

/** The safe default: TLS 1.2 and TLS 1.3. */
export const DEFAULT_PROTOCOLS = SslProtocols.Tls12 | SslProtocols.Tls13;

const ORDER: ReadonlyArray<[SslProtocols, SecureVersion]> = [
  [SslProtocols.Tls, 'TLSv1'],
  [SslProtocols.Tls11, 'TLSv1.1'],
  [SslProtocols.Tls12, 'TLSv1.2'],
  [SslProtocols.Tls13, 'TLSv1.3'],
];

/** Thrown at configuration time for a protocol set Node cannot express. */
export class SslProtocolsError extends Error {
  override readonly name = 'SslProtocolsError';
}

/**
 * Maps flags to Node's `minVersion`/`maxVersion`. OpenSSL only negotiates a contiguous range, so a set with a
 * hole (e.g. `Tls | Tls13`) is refused rather than silently widened. `None` means the default.
 * @throws SslProtocolsError for an empty or non-contiguous set.
 */
export function toVersionRange(protocols: SslProtocols = DEFAULT_PROTOCOLS): { minVersion: SecureVersion; maxVersion: SecureVersion; legacy: boolean } {
  const flags = protocols === SslProtocols.None ? DEFAULT_PROTOCOLS : protocols;
  const known = ORDER.reduce<number>((acc, [f]) => acc | f, 0);
  if ((flags & ~known) !== 0) throw new SslProtocolsError(`unsupported SslProtocols flags: ${flags & ~known} (SSL 2/3 are never offered)`);
  const enabled = ORDER.map(([f]) => (flags & f) !== 0);
  const first = enabled.indexOf(true);
  const last = enabled.lastIndexOf(true);
  if (enabled.slice(first, last + 1).includes(false)) throw new SslProtocolsError('SslProtocols must be a contiguous range of versions');
  return { minVersion: ORDER[first][1], maxVersion: ORDER[last][1], legacy: first < 2 };
}

/** Parses `"1.2"`, `"1.3"`, `"tls12"`, `"Tls12|Tls13"` and similar into flags (CLI and config files). */
export function parseSslProtocols(text: string): SslProtocols {
  let flags = 0;
  for (const part of text.split(/[|,\s]+/).filter(Boolean)) {
    const p = part.toLowerCase().replace(/^tlsv?/, '').replace(/^_/, '');
    if (p === '1' || p === '1.0' || p === '10' || p === '') flags |= SslProtocols.Tls;
    else if (p === '1.1' || p === '11') flags |= SslProtocols.Tls11;
    else if (p === '1.2' || p === '12') flags |= SslProtocols.Tls12;
    else if (p === '1.3' || p === '13') flags |= SslProtocols.Tls13;
    else throw new SslProtocolsError(`unknown TLS version "${part}"`);
  }
  return flags;
}

/** All flags from `min` upwards (for `--tls-min 1.3`). */
export function protocolsFrom(min: SslProtocols): SslProtocols {
  return ORDER.filter(([f]) => f >= min).reduce<number>((acc, [f]) => acc | f, 0);
}
