/** Runs a third-party command-line tool (a real mail client) for the interop specs. */
import { spawn } from 'node:child_process';

/** How one run ended. */
export interface ToolRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** What {@link runTool} accepts besides the command line. */
export interface ToolOptions {
  /** Written to the tool's stdin, which is then closed (closed at once when absent). */
  readonly input?: string;
  /** Added to the environment (e.g. a private `HOME`, so that no user configuration is read or written). */
  readonly env?: Readonly<Record<string, string>>;
  /** Killed (SIGKILL) after this long; default 20 s. Every tool here talks to loopback only. */
  readonly timeoutMs?: number;
}

/**
 * Runs `command args…`; resolves its exit code and output, or undefined when the command is not installed (the caller
 * marks its spec pending; `.ci/run` installs every tool, and `CI=true` forbids pending specs).
 */
export function runTool(command: string, args: readonly string[], options: ToolOptions = {}): Promise<ToolRun | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined); // the tool may exit before reading its input
    child.stdin.end(options.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') resolve(undefined);
      else reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
