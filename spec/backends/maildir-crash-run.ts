/**
 * `npm run crash:maildir [rounds]`: many SIGKILL rounds of {@link crashRounds} on one Maildir root (default 30).
 * Exits 1 with the problems found, 0 when every round passed. `CRASH_KEEP=1` keeps the root for inspection.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { testCertificates } from '../support/certs.js';
import { crashRounds } from './maildir-crash.js';
import { tlsArgs } from './maildir-process-harness.js';

const rounds = Number(process.argv[2] ?? 30);
const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-crash-'));
const certs = await testCertificates();
const started = Date.now();
const summary = await crashRounds({ root: path.join(dir, 'root'), tls: await tlsArgs(dir, certs), certs, rounds, senders: 8, maxLoadMs: 1500, log: (line) => console.log(line) });
console.log(`${summary.rounds} rounds in ${((Date.now() - started) / 1000).toFixed(0)} s: ${summary.acked} answered 250, ${summary.expunged} expunged, ${summary.present} present at the end`);
for (const problem of summary.problems) console.log(`PROBLEM ${problem}`);
if (process.env.CRASH_KEEP === '1') console.log(`root kept in ${dir}`);
else await rm(dir, { recursive: true, force: true });
process.exitCode = summary.problems.length === 0 ? 0 : 1;
