#!/usr/bin/env node
/** The `postern` executable (package bin, `npm start`). Options: `postern --help`. */
import '../vendor/inversify.js'; // first: the global Reflect metadata API (reflect-metadata/lite, inside the inversify bundle)
import { fail, runCli } from './run.js';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(fail(err)),
);
