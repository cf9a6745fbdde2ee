import { isIP } from 'node:net';

/**
 * Generates a self-signed server certificate in memory for `hosts` (DNS names and IP addresses go into the
 * subjectAltName). Used when a listener has no configured certificate; valid for 30 days, EC P-256.
 */
export async function generateSelfSigned(hosts: readonly string[]): Promise<{ cert: string; key: string }> {
  const cn = hosts.find((h) => isIP(h) === 0) ?? hosts[0] ?? 'localhost';
  const notBeforeDate = new Date(Date.now() - 60_000);
  const result = await (await import('selfsigned')).generate([{ name: 'commonName', value: cn }, { name: 'organizationName', value: 'Postern self-signed' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 30 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hosts.map((h) => (isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })) },
    ],
  });
  return { cert: result.cert, key: result.private };
}
