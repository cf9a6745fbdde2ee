/**
 * TextSession behaviour pinned down by its mutation run (issue 16), on a tiny line protocol over real loopback
 * sockets: the metrics label taken from the listener name, listener deadlines only where the session set none, the
 * whole-line deadline chosen from the command and idle timeouts, replies mixing bytes and text written byte-exact in
 * one write, and a `throttle` fault that still lets the session go on after its slices.
 */
import { expect } from 'chai';
import type { Authenticator } from '../../lib/contracts/authenticator.js';
import { peerInfo } from '../../lib/contracts/peer-info.js';
import type { Connection } from '../../lib/core/connection.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import type { FaultAction, FaultStage } from '../../lib/protocol/faults.js';
import type { SessionMetrics } from '../../lib/protocol/session-metrics.js';
import { TextSession, type SessionLimits } from '../../lib/protocol/text-session.js';
import { LineClient } from '../support/line-client.js';

const log = createLogger({ silent: true });

/** `+OK` to every line; `BIN` answers bytes and text in one reply; `WIN` records a login success. */
class TinySession extends TextSession {
  protected async greet(): Promise<void> {
    this.send('+OK tiny\r\n');
  }
  protected async onLine(line: Buffer): Promise<void> {
    const text = line.toString('latin1');
    if (text === 'BIN') {
      this.send(Buffer.from([0x2b, 0xff, 0x00, 0x80, 0xe9]));
      this.send('\r\n+OK é\r\n');
    } else if (text.startsWith('LOGIN ')) {
      // The authenticator answers by the password: `ok`, `temp`, anything else is wrong.
      const password = text.slice(6);
      const authenticator: Authenticator = {
        supportsSharedSecrets: false,
        authenticate: async (r) => (r.password === 'ok' ? { ok: true, username: r.username } : { ok: false, reason: r.password === 'temp' ? 'temporary-failure' : 'invalid-credentials' }),
      };
      const request = { protocol: 'tiny', mechanism: 'PLAIN', username: 'tim', password, peer: peerInfo(this.connection, 'tiny') };
      const check = await this.checkLogin(authenticator, request, { delayMs: 1, maxFailures: 2 });
      this.send(`+OK ${JSON.stringify(check)}\r\n`);
    } else if (text === 'WIN') {
      this.recordLoginSuccess('tim', 'PLAIN');
      this.send('+OK won\r\n');
    } else this.send(`+OK ${text}\r\n`);
  }
  protected async onLineTooLong(fatal: boolean): Promise<void> {
    this.send(fatal ? '-ERR runaway\r\n' : '-ERR too long\r\n');
  }
  protected async onTooManyErrors(): Promise<void> {
    this.send('-ERR too many errors\r\n');
  }
  protected async onIdleTimeout(): Promise<void> {
    this.send('-ERR timeout\r\n');
    await this.end('idle-timeout');
  }
}

interface Setup {
  limits?: SessionLimits;
  listener?: { name?: string; preAuthTimeoutMs?: number; commandTimeoutMs?: number };
  metrics?: SessionMetrics;
  fault?: (stage: FaultStage) => FaultAction | undefined;
}

describe('protocol: TextSession (mutation testing)', () => {
  let server: TcpServer | undefined;
  let client: LineClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = server = undefined;
  });

  async function start(setup: Setup = {}): Promise<LineClient> {
    server = new TcpServer(
      {
        handle: async (c: Connection) => {
          const s = new TinySession(c, setup.limits);
          s.applyListenerLimits(setup.listener ?? {});
          s.metrics = setup.metrics;
          const fault = setup.fault;
          if (fault) s.faults = { injector: { decide: (_p, stage) => fault(stage) }, protocol: 'tiny' };
          await s.run();
        },
      },
      { port: 0, closeTimeoutMs: 100 },
      log,
    );
    const { port } = await server.start();
    client = await LineClient.connect(port);
    return client;
  }

  for (const [name, label] of [
    ['smtps', 'smtp'],
    ['lmtp', 'lmtp'],
    [undefined, 'unknown'],
  ] as const) {
    it(`labels metrics of a session on listener ${name ?? '(no name)'} "${label}"`, async () => {
      const auths: string[][] = [];
      const metrics: SessionMetrics = { command: () => undefined, auth: (...a) => void auths.push(a), message: () => undefined };
      const c = await start({ listener: name ? { name } : {}, metrics });
      await c.expect(/^\+OK tiny$/);
      expect(await c.command('WIN', /^\+OK/)).to.deep.equal(['+OK won']);
      expect(auths).to.deep.equal([[label, 'PLAIN', 'success']]);
    });
  }

  it('takes no deadline from a listener that sets none', async () => {
    const c = await start({ listener: { name: 'tiny' } });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('NOOP', /^[+-]/)).to.deep.equal(['+OK NOOP']);
  });

  it("keeps the session's own command deadline when the listener sets none", async () => {
    const c = await start({ limits: { commandTimeoutMs: 100, idleTimeoutMs: 10_000 }, listener: { name: 'tiny' } });
    await c.expect(/^\+OK tiny$/);
    c.send('NO'); // a line that never ends
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR timeout']);
  });

  it('uses the command deadline for a line when there is no idle timeout', async () => {
    const c = await start({ limits: { commandTimeoutMs: 100, idleTimeoutMs: 0 } });
    await c.expect(/^\+OK tiny$/);
    c.send('NO');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR timeout']);
  });

  it('bounds a trickled line by the idle timeout when no command timeout is set', async () => {
    const c = await start({ limits: { idleTimeoutMs: 150 } });
    await c.expect(/^\+OK tiny$/);
    // One octet every 30 ms: never idle for 150 ms, but the line never ends.
    const drip = setInterval(() => c.send('x'), 30);
    try {
      expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR timeout']);
    } finally {
      clearInterval(drip);
    }
  });

  it('ends a session not past pre-authentication at preAuthTimeoutMs with the idle goodbye (the defaults)', async () => {
    const c = await start({ limits: { preAuthTimeoutMs: 100 } });
    expect(await c.expect(/^-ERR/)).to.deep.equal(['+OK tiny', '-ERR timeout']);
  });

  it('answers a bare LF like an over-long line by default, and goes on', async () => {
    const c = await start();
    await c.expect(/^\+OK tiny$/);
    c.send('NO\nOP\r\n');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR too long']);
    expect(await c.command('NOOP', /^[+-]/)).to.deep.equal(['+OK NOOP']);
  });

  it('decides logins: the user, a temporary failure, and wrong passwords up to the last one', async () => {
    const c = await start();
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('LOGIN ok', /^[+-]/)).to.deep.equal(['+OK {"ok":true,"username":"tim"}']);
    expect(await c.command('LOGIN temp', /^[+-]/)).to.deep.equal(['+OK {"ok":false,"why":"temporary","isLast":false}']);
    expect(await c.command('LOGIN bad', /^[+-]/)).to.deep.equal(['+OK {"ok":false,"why":"invalid","isLast":false}']);
    expect(await c.command('LOGIN bad', /^[+-]/)).to.deep.equal(['+OK {"ok":false,"why":"invalid","isLast":true}']);
  });

  it('writes a reply of bytes and text byte-exact', async () => {
    const c = await start();
    await c.expect(/^\+OK tiny$/);
    const got: string[] = [];
    c.raw.on('data', (d: Buffer | string) => got.push(typeof d === 'string' ? d : d.toString('latin1')));
    c.line('BIN');
    await c.expect(/^\+OK /);
    // The client reads latin1: the bytes as sent, then the UTF-8 of the text.
    expect(got.join('')).to.equal(Buffer.concat([Buffer.from([0x2b, 0xff, 0x00, 0x80, 0xe9]), Buffer.from('\r\n+OK é\r\n')]).toString('latin1'));
  });

  it('goes on with the session once a throttled reply is written', async () => {
    const c = await start({ fault: (stage) => (stage === 'connect' ? { kind: 'throttle', bytesPerSecond: 400 } : undefined) });
    expect(await c.expect(/^\+OK tiny$/)).to.deep.equal(['+OK tiny']);
    expect(await c.command('NOOP', /^[+-]/)).to.deep.equal(['+OK NOOP']);
  });
});
