#!/usr/bin/env node
/** The `postern` executable (package bin, `npm start`). Options: `postern --help`. */
import 'reflect-metadata';
import { fail, runCli } from './run.js';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(fail(err)),
);
