import { createRequire } from 'node:module';
import type pg from 'pg';
import type copyStreams from 'pg-copy-streams';

const require = createRequire(import.meta.url);
let driver: typeof pg | undefined;
let copy: typeof copyStreams | undefined;

/** node-postgres, loaded (CommonJS) on first use, so that `import 'postern'` does not pay for it without a PostgreSQL store. */
export function pgDriver(): typeof pg {
  return (driver ??= require('pg') as typeof pg);
}

/** pg-copy-streams, loaded on first use (see {@link pgDriver}). */
export function copyStreamsDriver(): typeof copyStreams {
  return (copy ??= require('pg-copy-streams') as typeof copyStreams);
}
