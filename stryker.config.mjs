// @ts-check
const dir = process.env.MUTATE_DIR ?? 'lib/protocol';

/**
 * The specs that exercise a directory, so that the initial run and each mutant's run stay short on 2 shared cores.
 * Directories not listed run the whole suite; `MUTATE_SPECS` (comma-separated globs under dist/) overrides.
 */
const SPECS = {
  'lib/protocol': [
    'dist/spec/protocol/**/*.spec.js',
    'dist/spec/core/tcp-server.spec.js',
    'dist/spec/smtp/smtp-server.spec.js',
    'dist/spec/smtp/smtp-tls.spec.js',
    'dist/spec/smtp/smtp-data.spec.js',
    'dist/spec/pop3/pop3-server.spec.js',
    'dist/spec/imap/imap-server.spec.js',
    'dist/spec/imap/commands/auth.spec.js',
  ],
  'lib/core': ['dist/spec/core/**/*.spec.js', 'dist/spec/smtp/smtp-tls.spec.js'],
  // The PostgreSQL files are reached through the store's API: which specs import a file says little (several are
  // imported by none, pg-user-mailboxes only by index.spec), so scripts/mutate-each.mjs uses this list for them.
  'lib/backends/postgres': ['dist/spec/backends/postgres*.spec.js'],
};
const specKey = Object.keys(SPECS).find((k) => dir.split(',').every((d) => d === k || d.startsWith(k + '/')));
const spec = process.env.MUTATE_SPECS?.split(',') ?? (specKey ? SPECS[specKey] : undefined);
// A mutant that silences a reply is caught by a client's wait for it: 2 s instead of 5 s (test runners inherit this).
process.env.POSTERN_SPEC_WAIT_MS ??= '2000';
// The PostgreSQL specs share one cluster per test-runner process (spec/support/postgres-cluster.ts) instead of an initdb
// and a server start each time mocha re-runs them for a mutant.
if (dir.split(',').some((d) => d.startsWith('lib/backends/postgres'))) process.env.POSTERN_PG_SHARED_CLUSTER ??= '1';

/**
 * StrykerJS mutation testing (`npm run mutate -- lib/<dir>`): mutates the TypeScript under one directory, builds the
 * sandbox with tsc (the specs run from dist/, like `npm test`), and runs mocha with per-test coverage so each mutant
 * only runs the specs that reach it. One worker: the machine is shared. Not run on CI (a run takes tens of minutes).
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  mutate: dir.split(',').map((d) => (d.endsWith('.ts') ? d : `${d}/**/*.ts`)),
  testRunner: 'mocha',
  mochaOptions: { config: '.mocharc.json', ...(spec ? { spec } : {}) },
  buildCommand: 'npm run build', // tsc, then the one-file inversify (scripts/bundle-vendor.mjs) that spec/index.spec checks
  checkers: ['typescript'],
  // The checker only type-checks lib/ (a mutant changes an expression, not a declaration the specs depend on): on 2
  // shared cores the checker, not the specs, was most of a run's CPU when it also checked spec/, bench/ and samples/.
  tsconfigFile: 'tsconfig.mutate.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Mutants in module-level code run on import; each would need the whole suite. Their statements are covered anyway.
  ignoreStatic: true,
  concurrency: 1,
  timeoutMS: 10_000,
  dryRunTimeoutMinutes: 20,
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: `reports/mutation/${dir}/index.html` },
  jsonReporter: { fileName: `reports/mutation/${dir}/mutation.json` },
  cleanTempDir: 'always',
  ignorePatterns: ['dist', 'reports', '.bench-out', 'certs/*.pem'],
};
