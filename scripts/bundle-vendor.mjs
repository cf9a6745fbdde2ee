// Runs after `tsc` in `npm run build`: replaces dist/lib/vendor/inversify.js (a re-export of the `inversify` package)
// with one ES module bundling inversify and its @inversifyjs/* packages (~245 files), so `import 'postern'` loads one
// file instead of them. The reflect-metadata/lite polyfill inversify imports goes in too (as CommonJS wrapped by
// esbuild), which spares Node's CommonJS export scan of it on every start; copies of reflect-metadata (≥ 0.2) share
// one registry through Symbol.for('@reflect-metadata:registry') on the global Reflect, so an application's own
// `import 'reflect-metadata'` sees the same metadata. See lib/vendor/inversify.ts for why a second copy of inversify
// in an application still works with this one.
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
/** inversify's package.json, found as Node finds packages (walking up): a Stryker sandbox has no node_modules of its own. */
function inversifyPackageJson(dir) {
  const candidate = path.join(dir, 'node_modules/inversify/package.json');
  if (existsSync(candidate)) return candidate;
  const parent = path.dirname(dir);
  if (parent === dir) throw new Error('bundle-vendor: inversify is not installed');
  return inversifyPackageJson(parent);
}
const { version } = JSON.parse(await readFile(inversifyPackageJson(root), 'utf8'));
const outfile = new URL('../dist/lib/vendor/inversify.js', import.meta.url).pathname;

await build({
  stdin: { contents: "export * from 'inversify';", resolveDir: root, loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile,
  sourcemap: false,
  legalComments: 'inline',
  banner: { js: `// inversify ${version} and its @inversifyjs packages (MIT License, https://github.com/inversify/monorepo) and reflect-metadata/lite (Apache-2.0, notice below), bundled by scripts/bundle-vendor.mjs.` },
  logLevel: 'warning',
});
await rm(`${outfile}.map`, { force: true }); // tsc's map of the re-export it replaced
