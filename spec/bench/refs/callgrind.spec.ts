import { expect } from 'chai';
import { once } from 'node:events';
import net from 'node:net';
import { callgrindProblem, callgrindTotal, compilerInstructions, CountedProcess } from '../../../bench/refs/callgrind.js';
import { freePort, stopProcess, workDir } from '../../../bench/refs/processes.js';

/** The head of a callgrind 3.19 dump made by `callgrind_control --dump` (`--dump-instr=no`), then one cost line. */
const DUMP = [
  '# callgrind format',
  'version: 1',
  'creator: callgrind-3.19.0',
  'pid: 12881',
  'cmd:  node --single-threaded -e setInterval(()=>{},50)',
  'part: 1',
  '',
  'desc: Trigger: dump',
  '',
  'positions: line',
  'events: Ir',
  'summary: 42266372',
  '',
  'fn=(20448) 0x000000000d0469c0',
  '0 246',
  'totals: 42267198',
].join('\n');

describe('bench: callgrind instruction counts', () => {
  it('reads the summary line of a dump (the events since the last zero), not its totals', () => {
    expect(callgrindTotal(DUMP)).to.equal(42_266_372);
  });

  it('falls back on the totals line when a dump has no summary', () => {
    expect(callgrindTotal(DUMP.replace(/^summary:.*$/m, ''))).to.equal(42_267_198);
  });

  it('refuses a file that is not a dump', () => {
    expect(() => callgrindTotal('==1== Callgrind, a call-graph generating cache profiler\n')).to.throw('not a callgrind dump: no summary or totals line');
  });

  it("sums the self cost of V8's optimizing compilers' functions in callgrind_annotate output", () => {
    const annotated = [
      '--------------------------------------------------------------------------------',
      'Ir                  ',
      '--------------------------------------------------------------------------------',
      '1,116,988,822 (100.0%)  PROGRAM TOTALS',
      '',
      '--------------------------------------------------------------------------------',
      'Ir                   file:function',
      '--------------------------------------------------------------------------------',
      '   68,798 ( 0.16%)  ???:Builtins_LoadIC [/usr/bin/node]',
      '1,000,000 ( 0.09%)  ???:v8::internal::compiler::Scheduler::ScheduleEarly() [/usr/bin/node]',
      '    2,500 ( 0.01%)  ???:v8::internal::maglev::MaglevGraphBuilder::VisitLdar() [/usr/bin/node]',
      '      300 ( 0.00%)  ???:v8::internal::compiler::turboshaft::Assembler::Emit() [/usr/bin/node]',
      '   19,557 ( 0.05%)  ???:v8::internal::Heap::Scavenge() [/usr/bin/node]',
    ].join('\n');
    expect(compilerInstructions(annotated)).to.equal(1_002_800);
  });

  describe('a process under callgrind', function () {
    this.timeout(120_000);
    before(async function () {
      const problem = callgrindProblem();
      if (problem !== undefined) {
        if (process.env.CI === 'true') throw new Error(problem);
        this.skip();
      }
    });

    it('counts the instructions of the work between the zero and the dump, in proportion to the work', async () => {
      // A server that spins a fixed loop per byte received: twice the bytes, twice the counted instructions.
      const server = `
        const net = require('node:net');
        let sink = 0;
        net.createServer((s) => s.on('data', (d) => { for (let i = 0; i < d.length * 20000; i++) sink += i & 1; s.write('k'); }))
          .listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
      `;
      const dir = await workDir('callgrind-spec-');
      const port = await freePort();
      const counted = await CountedProcess.start(dir.path, 'spinner', ['-e', server, String(port)], /^ready$/m);
      try {
        const socket = net.connect(port, '127.0.0.1');
        await once(socket, 'connect');
        const send = async (bytes: number): Promise<void> => {
          socket.write(Buffer.alloc(bytes, 0x61));
          await once(socket, 'data');
        };
        await send(50); // warm-up: the loop compiled before anything is counted
        const small = await counted.count(() => send(50));
        const large = await counted.count(() => send(100));
        socket.destroy();
        // 50 bytes x 20,000 turns is ~1 M loop iterations; the counts must see it, and twice as much for twice the bytes.
        expect(small.all).to.be.greaterThan(1_000_000);
        expect(large.all / small.all).to.be.within(1.6, 2.4);
        expect(small.compiler).to.be.within(0, small.all);
      } finally {
        await stopProcess(counted.child);
        await dir.remove();
      }
    });
  });
});
