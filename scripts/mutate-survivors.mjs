#!/usr/bin/env node
// @ts-check
/**
 * Re-runs StrykerJS on only the Survived and NoCoverage mutants of one file's report (`node scripts/mutate-survivors.mjs
 * lib/<file>.ts <comma-separated spec globs under dist/>`), through `--mutate` ranges at their exact locations, and merges
 * the new verdicts into reports/mutation/<file>/mutation.json (the report before the first merge is kept beside it as
 * mutation.before-rerun.json; the partial run's own report moves to reports/mutation-reruns/). For new cases written
 * against a file's survivors: an incremental run re-tests every mutant a new test covers, which for a file's central
 * code is all of them. A mutant killed before keeps its verdict, so use it only while the file's code is unchanged.
 * Runs under `nice -n 15` with the config's one worker. Exit code: 0, or 1 when Stryker failed.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const [file, specs] = process.argv.slice(2);
if (!file || !specs) {
  console.error('usage: node scripts/mutate-survivors.mjs lib/<file>.ts <spec globs under dist/, comma-separated>');
  process.exit(2);
}
const dir = `reports/mutation/${file}`;
const old = JSON.parse(readFileSync(`${dir}/mutation.json`, 'utf8'));
/** @type {any[]} */
const oldMutants = /** @type {any} */ (Object.values(old.files)[0]).mutants;
const open = oldMutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage');
const at = (/** @type {any} */ m) =>
  `${file}:${m.location.start.line}:${Math.max(0, m.location.start.column - 1)}-${m.location.end.line}:${m.location.end.column + 1}`;
const ranges = [...new Set(open.map(at))];
console.log(`mutate-survivors: ${file}: ${open.length} open mutants, ${ranges.length} ranges`);
const tag = `${file}.rerun`;
const env = { ...process.env, MUTATE_DIR: tag, MUTATE_SPECS: specs };
const args = ['-n', '15', 'npx', 'stryker', 'run', '--mutate', ranges.join(','), '--reporters', 'clear-text,json,progress-append-only'];
const r = spawnSync('nice', args, { env, stdio: 'inherit' });
if (r.status !== 0) process.exit(1);
const fresh = JSON.parse(readFileSync(`reports/mutation/${tag}/mutation.json`, 'utf8'));
/** @type {any[]} */
const freshMutants = /** @type {any} */ (Object.values(fresh.files)[0]).mutants;
const key = (/** @type {any} */ m) =>
  `${m.location.start.line}:${m.location.start.column}-${m.location.end.line}:${m.location.end.column} ${m.mutatorName} ${m.replacement}`;
const byKey = new Map(freshMutants.map((m) => [key(m), m]));
let changed = 0;
for (const m of open) {
  const f = byKey.get(key(m));
  if (f === undefined) continue;
  if (f.status !== m.status) changed++;
  // The test ids of the new run do not name the old report's tests: keep only the verdict and its reason.
  Object.assign(m, { status: f.status, statusReason: f.statusReason, testsCompleted: f.testsCompleted, killedBy: undefined, coveredBy: undefined });
}
console.log(`mutate-survivors: ${changed} of ${open.length} changed verdict`);
if (!existsSync(`${dir}/mutation.before-rerun.json`)) copyFileSync(`${dir}/mutation.json`, `${dir}/mutation.before-rerun.json`);
writeFileSync(`${dir}/mutation.json`, JSON.stringify(old));
mkdirSync('reports/mutation-reruns', { recursive: true });
renameSync(`reports/mutation/${tag}`, `reports/mutation-reruns/${file.replace(/\//g, '_')}.${Date.now()}`);
