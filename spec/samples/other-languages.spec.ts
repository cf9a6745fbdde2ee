import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** How the samples start postern here: the built CLI (users run `npx postern`). */
const POSTERN_CMD = `${process.execPath} ${ROOT}dist/lib/cli/main.js`;

function has(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 90_000, env: { ...process.env, POSTERN_CMD, PYTHONDONTWRITEBYTECODE: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('sample: other languages drive the postern command and its HTTP API (README "Other languages")', function () {
  this.timeout(120_000);

  it('the pytest suite in samples/python passes', async function () {
    if (!has('python3', ['-c', 'import pytest'])) this.skip(); // needs python3-pytest (see .ci/run)
    const r = await run('python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'samples/python']);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/3 passed/);
  });

  it('the curl script in samples/curl runs to its end', async function () {
    if (!has('curl', ['--version']) || !has('python3', ['--version'])) this.skip(); // needs curl and python3 (see .ci/run)
    const r = await run('bash', ['samples/curl/postern-api.sh']);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.contain('received: Order 42 confirmed from shop@example.test').and.contain('refused as injected: 1 time(s)');
  });
});
