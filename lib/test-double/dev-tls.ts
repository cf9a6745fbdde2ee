import { generateDevCa, generateServerCertificate, type PemPair } from '../core/dev-certificates.js';

/** The development CA of this process, made on first use (one key pair per process, not per server). */
let devCa: Promise<PemPair> | undefined;
/** Server certificates signed by {@link devCa}, by host list. */
const leaves = new Map<string, Promise<PemPair>>();

/**
 * The test double's default TLS material: one development CA per process and one server certificate per host list,
 * both cached, so only the first `startMailServer()` of a process pays for key generation (the fast-start
 * goal: later servers start in a few milliseconds). A failed generation is not cached.
 */
export async function testDoubleCertificates(hosts: readonly string[]): Promise<{ ca: PemPair; server: PemPair }> {
  const ca = (devCa ??= generateDevCa().catch((err: unknown) => {
    devCa = undefined;
    throw err;
  }));
  const key = hosts.join(',');
  let leaf = leaves.get(key);
  if (!leaf) {
    leaf = ca.then((c) => generateServerCertificate(c, hosts));
    leaves.set(key, leaf);
    leaf.catch(() => leaves.delete(key));
  }
  return { ca: await ca, server: await leaf };
}
