/**
 * Shared test certificate fixture. Generating the set takes ~100 ms, so it happens once per
 * mocha run and every spec shares the same CA.
 */
import { generateDevCertificates, type DevCertificates } from '../../lib/core/dev-certificates.js';

let pending: Promise<DevCertificates> | undefined;

/** Returns the run's certificate set, generating it on first call. Do not mutate the result. */
export async function testCertificates(): Promise<DevCertificates> {
  pending ??= generateDevCertificates().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}
