/** Runs Python scripts for the specs that use Python's standard library as a real client or an oracle. */
import { execFile } from 'node:child_process';

/**
 * Runs `python3 -c script args…`; resolves with its stdout as bytes, or undefined when python3 is not installed (the
 * caller marks its spec pending; `.ci/run` installs python3). A failing script rejects with its stderr.
 */
export function pythonBytes(script: string, args: string[] = [], timeoutMs = 20_000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script, ...args], { encoding: 'buffer', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      if (err) return reject(new Error(`python3 failed: ${stderr.toString()}`));
      resolve(stdout);
    });
  });
}

/** {@link pythonBytes} with stdout as UTF-8 text. */
export async function python(script: string, args: string[] = [], timeoutMs = 20_000): Promise<string | undefined> {
  return (await pythonBytes(script, args, timeoutMs))?.toString('utf8');
}
