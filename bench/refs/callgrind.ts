/**
 * Instruction counts of a server process under Valgrind's callgrind: the process runs about fifty times slower, but
 * what it executes per operation does not move with the machine's load (the same build and client gave the same
 * count twice to 0.05 %, where `/proc` CPU readings of one round moved by ±20 % on the 2-core VM). `callgrind_control`
 * zeroes the counters after a warm-up and dumps them after the counted work.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { spawnLogged } from './processes.js';

const run = promisify(execFile);

/** Why callgrind cannot run here (`valgrind`, `callgrind_control` and `callgrind_annotate` come with Debian's `valgrind`), or undefined. */
export function callgrindProblem(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
    // Looked up on PATH rather than run: callgrind_annotate --version exits with status 255.
    if (!dirs.some((d) => existsSync(join(d, tool)))) return `${tool} is not installed (apt-get install valgrind)`;
  }
  return undefined;
}

/**
 * The instructions of one callgrind dump: its `summary:` line (the events since the last zero or dump; with
 * `--dump-instr=no` the one event is `Ir`).
 * @throws Error when the text has no such line.
 */
export function callgrindTotal(dump: string): number {
  const m = /^summary:\s*(\d+)/m.exec(dump) ?? /^totals:\s*(\d+)/m.exec(dump);
  if (!m) throw new Error('not a callgrind dump: no summary or totals line');
  return Number(m[1]);
}

/**
 * V8's optimizing compilers (TurboFan, Turboshaft, Maglev): under callgrind they run far more often per operation than
 * in a real run (a process ~50x slower meets V8's time-driven collections and code flushing that much more often per
 * operation, and compiles the dropped code again), so their share is reported apart.
 */
const COMPILER = /v8::internal::(?:compiler|turboshaft|maglev)::/;

/** One dump's instructions: all of them, and those in the optimizing compilers' own functions (self cost). */
export interface InstructionCount {
  readonly all: number;
  readonly compiler: number;
}

/**
 * The self cost of the optimizing compilers' functions in `callgrind_annotate --inclusive=no` output (lines
 * `<count> (<percent>%)  <file>:<function> [<object>]`); the PROGRAM TOTALS line is not a function.
 */
export function compilerInstructions(annotated: string): number {
  let sum = 0;
  for (const line of annotated.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (m && !m[2]!.includes('PROGRAM TOTALS') && COMPILER.test(m[2]!)) sum += Number(m[1]!.replaceAll(',', ''));
  }
  return sum;
}

/** A Node.js process run under callgrind: {@link count} measures one piece of work. */
export class CountedProcess {
  private dumps = 0;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly outFile: string,
  ) {}

  /**
   * Starts `node --single-threaded args` under callgrind in `dir` and resolves when `ready` matches its log (up to
   * `timeoutMs`, 120 s by default: start-up under callgrind takes seconds). `--single-threaded` puts V8's collector
   * and compiler on the main thread, where their work is counted with the rest.
   */
  static async start(dir: string, name: string, args: readonly string[], ready: RegExp, options: { cwd?: string; timeoutMs?: number } = {}): Promise<CountedProcess> {
    const file = name.replace(/[^\w.-]+/g, '-');
    const outFile = join(dir, `${file}.callgrind`);
    const child = await spawnLogged('valgrind', ['--tool=callgrind', `--callgrind-out-file=${outFile}`, '--dump-instr=no', process.execPath, '--single-threaded', ...args], {
      logFile: join(dir, `${file}.log`),
      ready,
      what: `${name} under callgrind`,
      cwd: options.cwd,
      timeoutMs: options.timeoutMs ?? 120_000,
    });
    return new CountedProcess(name, child, outFile);
  }

  /** Zeroes the counters, runs `work`, dumps them and resolves the instructions the process executed meanwhile. */
  async count(work: () => Promise<unknown>): Promise<InstructionCount> {
    const pid = String(this.child.pid);
    await run('callgrind_control', ['--zero', pid]);
    await work();
    await run('callgrind_control', ['--dump', pid]);
    this.dumps++;
    const file = this.dumpFile(this.dumps);
    const { stdout } = await run('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { maxBuffer: 64 * 1024 * 1024 });
    return { all: callgrindTotal(readFileSync(file, 'utf8')), compiler: compilerInstructions(stdout) };
  }

  /** callgrind writes its n-th dump to `<out>.<n>` (threads not separated). */
  private dumpFile(n: number): string {
    const file = `${this.outFile}.${n}`;
    if (!existsSync(file)) throw new Error(`${this.name}: callgrind wrote no dump ${file}`);
    return file;
  }
}
