#!/usr/bin/env node
// @ts-check
/**
 * Runs StrykerJS one source file at a time (`npm run mutate:each -- lib/core lib/protocol/line-reader.ts …`), each with
 * only the specs that import that file (or, for a file no spec imports, the specs that import a lib/ module importing
 * it, such as the module it was split out of; failing that, the directory's list in stryker.config.mjs), so
 * each run's initial test pass and each mutant's tests stay short on a shared 2-core machine. Runs under `nice -n 10`
 * with one worker, incrementally (a second run of a file re-tests only the mutants whose code or covering tests
 * changed; delete reports/mutation/<file>/ for a fresh run). After each file it prints a score line; at the end a Markdown table of every file that has a report
 * under reports/mutation/ (also from earlier runs) with the total of those files.
 *
 * `--specs` only prints which specs each file would be run with. `--summary` only prints the table from the reports already there; `--survivors` also lists each surviving or
 * uncovered mutant (file:line, mutator, replacement) of those reports, for killing or for the equivalent list. `MUTATE_SPECS` overrides the spec choice for every
 * file. Exit code: 0, or 1 when a Stryker run failed. CI runs no mutation testing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const survivors = args.includes('--survivors');
const summaryOnly = survivors || args.includes('--summary');
const targets = args.filter((a) => !a.startsWith('--'));

/** The .ts files under a path (a file is itself), skipping declaration files. */
function sources(p) {
  if (statSync(p).isFile()) return [p];
  return readdirSync(p, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? sources(path.join(p, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path.join(p, e.name)] : []))
    .sort();
}

/** Spec files (as dist/…js) whose source imports one of `files` by its module name. */
function specsImportingAny(files) {
  const needles = files.map((f) => `/${path.basename(f, '.ts')}.js'`);
  const all = sources('spec').filter((f) => f.endsWith('.spec.ts'));
  return all.filter((f) => needles.some((n) => readFileSync(f, 'utf8').includes(n))).map((f) => `dist/${f.replace(/\.ts$/, '.js')}`);
}

/** The lib/ files beside `file` or elsewhere under lib/ that import it directly (`from './name.js'` or `../dir/name.js'`). */
function libImporters(file) {
  const needle = `/${path.basename(file, '.ts')}.js'`;
  return sources('lib').filter((f) => f !== file && readFileSync(f, 'utf8').includes(needle));
}

/**
 * The specs that import `file`; for a file no spec imports (a piece split out of a larger module, reached through it),
 * the specs that import one of its direct importers under lib/ (lib/index.ts left out: every spec would qualify).
 */
function specsImporting(file) {
  const direct = specsImportingAny([file]);
  if (direct.length > 0) return direct;
  // dist/spec/index.spec.js imports modules only to see what loads lazily; it exercises none of them.
  return specsImportingAny(libImporters(file).filter((f) => f !== 'lib/index.ts')).filter((f) => f !== 'dist/spec/index.spec.js');
}

/** Directories mutated with their stryker.config.mjs spec list rather than each file's importers. */
const DIRECTORY_LISTS = ['lib/backends/postgres'];

const STATUSES = ['Killed', 'Timeout', 'Survived', 'NoCoverage', 'CompileError', 'RuntimeError', 'Ignored'];

/** Counts per status of a list of mutants (mutation-testing-report-schema). */
function count(mutants) {
  const c = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const m of mutants) c[m.status] = (c[m.status] ?? 0) + 1;
  return c;
}

function row(name, c) {
  const detected = c.Killed + c.Timeout;
  const valid = detected + c.Survived + c.NoCoverage;
  const covered = detected + c.Survived;
  const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)} %` : '–');
  const total = valid + c.CompileError + c.RuntimeError;
  return `| ${name} | ${total} (${c.CompileError + c.RuntimeError}) | ${c.Killed} + ${c.Timeout} | ${c.Survived} | ${c.NoCoverage} | ${pct(detected, valid)} (${pct(detected, covered)}) |`;
}

if (args.includes('--specs')) {
  // Which specs each file would be mutated with, without running Stryker.
  for (const file of targets.flatMap(sources)) console.log(`${file}: ${specsImporting(file).join(' ') || '(the directory list)'}`);
  process.exit(0);
}

let failed = false;
if (!summaryOnly) {
  if (targets.length === 0) {
    console.error('usage: npm run mutate:each -- lib/<dir or file.ts> … [--summary]');
    process.exit(2);
  }
  for (const file of targets.flatMap(sources)) {
    // Directories whose stryker.config.mjs list beats the importers (their files are reached through another API).
    const byDirectory = DIRECTORY_LISTS.some((d) => file.startsWith(`${d}/`));
    const specs = process.env.MUTATE_SPECS ?? (byDirectory ? '' : specsImporting(file).join(','));
    const env = { ...process.env, MUTATE_DIR: file, ...(specs ? { MUTATE_SPECS: specs } : {}) };
    console.log(`mutate: ${file} (specs: ${specs || 'the directory list'})`);
    // Incremental per file: a later run re-tests only mutants whose code or covering tests changed.
    const incremental = ['--incremental', '--incrementalFile', `reports/mutation/${file}/stryker-incremental.json`];
    const reporters = ['--reporters', 'clear-text,html,json,progress-append-only'];
    const r = spawnSync('nice', ['-n', '10', 'npx', 'stryker', 'run', ...incremental, ...reporters], { env, stdio: 'inherit' });
    if (r.status !== 0) {
      failed = true;
      console.error(`mutate: ${file}: stryker exited ${r.status}`);
      continue;
    }
    const report = JSON.parse(readFileSync(`reports/mutation/${file}/mutation.json`, 'utf8'));
    console.log(row(file, count(Object.values(report.files).flatMap((f) => f.mutants))));
  }
}

/** Per source file, the counts from the newest report under reports/mutation/ that mutated it. */
function latestPerFile() {
  const dir = 'reports/mutation';
  if (!existsSync(dir)) return new Map();
  const reports = readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name === 'mutation.json')
    .map((e) => path.join(e.parentPath, e.name))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  const out = new Map();
  for (const r of reports) {
    for (const [file, f] of Object.entries(JSON.parse(readFileSync(r, 'utf8')).files)) out.set(file, f.mutants);
  }
  return out;
}

const perFile = [...latestPerFile()].sort(([a], [b]) => a.localeCompare(b));
const sum = count([]);
console.log('\n| file | mutants (not compiling) | killed + timed out | survived | no coverage | score (covered) |');
console.log('|---|---|---|---|---|---|');
for (const [file, mutants] of perFile) {
  const c = count(mutants);
  for (const k of STATUSES) sum[k] += c[k];
  console.log(row(file, c));
}
if (perFile.length > 1) console.log(row('**these files**', sum));
if (survivors) {
  for (const [file, mutants] of perFile) {
    for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
      const at = `${file}:${m.location.start.line}:${m.location.start.column}`;
      console.log(`${m.status === 'Survived' ? 'survived' : 'no coverage'} ${at} ${m.mutatorName}: ${JSON.stringify(m.replacement ?? '')}`);
    }
  }
}
process.exit(failed ? 1 : 0);
