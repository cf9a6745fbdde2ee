import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { isAlive, treeCpuMs } from '../../../bench/refs/processes.js';

/**
 * A parent that starts a child burning CPU for a bounded number of iterations, prints the child's own CPU reading
 * when it has exited (and been reaped), and waits for stdin to close.
 */
const PARENT = `
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, ['-e', "let x = 0; for (let i = 0; i < 1e8; i++) x += i; const u = process.cpuUsage(); console.log((u.user + u.system) / 1000)"]);
let out = '';
child.stdout.on('data', (d) => (out += d));
child.on('exit', () => console.log('child-cpu ' + out.trim()));
process.stdin.resume();
`;

describe('bench: process-tree CPU from /proc', function () {
  this.timeout(60_000);

  it('charges a server for the CPU of a worker it has already reaped', async function () {
    if (process.platform !== 'linux') this.skip(); // /proc is Linux's; the reference benchmarks run only there
    const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const [childCpu] = await new Promise<number[]>((resolve) =>
        parent.stdout.on('data', () => {
          const m = /child-cpu ([\d.]+)/.exec(out);
          if (m) resolve([Number(m[1])]);
        }),
      );
      expect(childCpu).to.be.greaterThan(0);
      // The worker is gone; its time now sits in the parent's cutime/cstime. One 10 ms tick of rounding either way.
      expect(treeCpuMs(parent.pid!)).to.be.at.least(childCpu - 10);
    } finally {
      parent.stdin?.end();
      if (parent.exitCode === null) await once(parent, 'exit');
    }
    expect(isAlive(parent.pid!)).to.equal(false);
  });
});
