/**
 * `npm run certs`: writes throwaway development certificates for localhost.
 *
 * Usage: `node dist/lib/cli/make-certs.js [dir]` (default `certs/`). Overwrites existing files,
 * prints each path written and the server certificate's SHA-256 fingerprint. Exits 1 on failure.
 */
import { pathToFileURL } from 'node:url';
import { fingerprint256, writeDevCertificates } from '../core/dev-certificates.js';

/** Default output directory, relative to the working directory. */
export const DEFAULT_CERT_DIR = 'certs';

/** Writes the certificate set into `dir` and reports to stdout. Throws if writing fails. */
export async function makeCerts(dir: string = DEFAULT_CERT_DIR): Promise<void> {
  const { certs, files } = await writeDevCertificates(dir);
  for (const file of files) console.log(`wrote ${file}`);
  console.log(`server certificate SHA-256 fingerprint: ${fingerprint256(certs.server.cert)}`);
  console.log('these are throwaway localhost test certificates: never use them elsewhere');
}

// Run only as the entry point, so importing makeCerts has no side effects.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  makeCerts(process.argv[2]).catch((err: unknown) => {
    console.error('make-certs failed:', err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
