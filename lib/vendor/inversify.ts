/**
 * The one inversify every Postern module uses at run time: `import { injectable } from '../vendor/inversify.js'`,
 * never `from 'inversify'` in `lib/` (lint refuses it; `import type` is fine, it loads nothing).
 *
 * `tsc` compiles this file to a plain re-export of the `inversify` package (correct, but Node then loads inversify's
 * ~245 ES module files, about half of `import 'postern'`). `npm run build` then replaces that output with one
 * esbuild bundle of the same package (`scripts/bundle-vendor.mjs`), so the whole container loads as one file, with
 * the `reflect-metadata/lite` polyfill it installs on the global `Reflect`.
 * Types come from the `inversify` package either way.
 *
 * Your own code may keep importing `inversify` 8 itself: inversify keeps its state where every copy sees it
 * (`reflect-metadata` on the global `Reflect`, string metadata keys, `Symbol.for` brands instead of `instanceof`), so
 * your `ContainerModule`s, `@injectable()` classes and `LazyServiceIdentifier`s work with Postern's containers and the
 * other way round.
 * @packageDocumentation
 */
export * from 'inversify';
