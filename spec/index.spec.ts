import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/** The package root (where package.json is): `import 'postern'` from here resolves through its own "exports". */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Every file a fresh `node` loads through the ESM loader for `import 'postern'`, as paths relative to the package
 * root: a module-loader hook prints each `file:` URL. (CommonJS files that a CommonJS package requires itself do not
 * pass the hook; the first file of every package imported from an ES module does.)
 */
async function filesLoadedByImport(): Promise<string[]> {
  // writeSync: the hooks run on their own thread, whose buffered stderr may be cut off when the child exits.
  const hooks = `import { writeSync } from 'node:fs'; export async function load(url, context, next) { if (url.startsWith('file:')) writeSync(2, 'load ' + url + '\\n'); return next(url, context); }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const stderr = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', "await import('postern');"],
      { cwd: ROOT, timeout: 60_000 },
      (err, _stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stderr)),
    ),
  );
  const rootUrl = new URL(`file://${ROOT}`).href;
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('load '))
    .map((line) => line.slice('load '.length).replace(rootUrl, ''));
}

// Issue 11, fast start: what `import 'postern'` evaluates. The time itself is measured in bench/start.bench.ts
// against smtp-server; this guards the causes, which a refactoring can bring back without anyone noticing.
describe("import 'postern'", function () {
  let files: string[];
  before(async function () {
    files = await filesLoadedByImport();
  });

  it('loads inversify as the one bundled file every Postern module imports, none of its ~245 package files', function () {
    expect(files).to.include('dist/lib/vendor/inversify.js');
    expect(files.filter((f) => f.includes('node_modules/inversify/') || f.includes('node_modules/@inversifyjs/'))).to.deep.equal([]);
  });

  it('loads no package file (mailparser, selfsigned, winston, Fastify, pg, prom-client, acme-client load on first use; reflect-metadata/lite is in the bundle)', function () {
    const packages = new Set(files.filter((f) => f.includes('node_modules/')).map((f) => f.split('node_modules/').pop()?.split('/')[0]));
    expect([...packages]).to.deep.equal([]);
  });

  it('leaves the IMAP and POP3 session code, the HTTP API routes, the stores\' folder and user views and the CLI to load when used', function () {
    const lazy = [
      'dist/lib/imap/imap-connection.js',
      'dist/lib/pop3/pop3-connection.js',
      'dist/lib/http/http-app.js',
      'dist/lib/backends/maildir/maildir-folder.js',
      'dist/lib/backends/maildir/maildir-user-mailboxes.js',
      'dist/lib/backends/postgres/pg-user-mailboxes.js',
    ];
    expect(files.filter((f) => lazy.includes(f))).to.deep.equal([]);
    expect(files.filter((f) => f.startsWith('dist/lib/imap/commands/') || f.startsWith('dist/lib/cli/'))).to.deep.equal([]);
    expect(files).to.include('dist/lib/imap/imap-server.js'); // the exported handler itself is there
  });
});
