/**
 * What `TextSession` tells an operator (issue 16, survivors of its mutation run): the exact phrase, level and fields of
 * every log line it writes (timeouts, faults, refused lines, spent budgets, failed and throttled logins, discarded
 * plaintext at STARTTLS and COMPRESS), the debug wire trace only when the logger wants debug lines, the close reason
 * the listener logs, and one goodbye for one session however many timers fire. A tiny line protocol on real loopback
 * sockets with a logger that keeps every line, debug included.
 */
import { expect } from 'chai';
import tls from 'node:tls';
import type { Authenticator } from '../../lib/contracts/authenticator.js';
import { peerInfo } from '../../lib/contracts/peer-info.js';
import type { Connection } from '../../lib/core/connection.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import type { Logger } from '../../lib/log/logger.js';
import { AuthThrottle } from '../../lib/protocol/auth-throttle.js';
import type { FaultAction, FaultStage } from '../../lib/protocol/faults.js';
import { SASL_RESPONSE_MAX_LENGTH } from '../../lib/protocol/limits.js';
import type { SessionMetrics } from '../../lib/protocol/session-metrics.js';
import { TextSession, type SessionLimits } from '../../lib/protocol/text-session.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

interface Line {
  readonly level: string;
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

/** Keeps every line (debug too) with its child metadata; `debug` says what `isDebugEnabled` answers. */
class KeepingLogger implements Logger {
  constructor(
    readonly lines: Line[],
    readonly isDebugEnabled: boolean,
    private readonly bound: Record<string, unknown> = {},
  ) {}
  error(message: string, meta?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, meta: { ...this.bound, ...meta } });
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, meta: { ...this.bound, ...meta } });
  }
  info(message: string, meta?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', message, meta: { ...this.bound, ...meta } });
  }
  debug(message: string, meta?: Record<string, unknown>): void {
    this.lines.push({ level: 'debug', message, meta: { ...this.bound, ...meta } });
  }
  child(meta: Record<string, unknown>): Logger {
    return new KeepingLogger(this.lines, this.isDebugEnabled, { ...this.bound, ...meta });
  }
}

/** Fields the listener and connection add to every line, left out of the comparisons. */
const BOUND = new Set(['listener', 'cid', 'remote', 'proto']);

interface Options {
  limits?: SessionLimits;
  fault?: (stage: FaultStage) => FaultAction | undefined;
  throttle?: AuthThrottle;
  metrics?: SessionMetrics;
  /** The idle goodbye only sends its line (the session goes on). */
  lenientGoodbye?: boolean;
  /** Called when the pre-authentication timer asks whether the session got past it. */
  onPreAuthAsked?: () => void;
}

/**
 * `+OK <line>` to every line; `TLS` upgrades, `ZIP` compresses, `CONT` reads a SASL continuation (`CONTS` again after an over-long one), `BODY` reads a dot
 * body, `LOGIN <password>` checks a login of `tim` (`ok`, `temp`, anything else wrong), `FAULT` consults the injector.
 */
class TinySession extends TextSession {
  constructor(
    connection: Connection,
    private readonly o: Options,
    private readonly security: ServerSecurity,
  ) {
    super(connection, o.limits);
  }
  protected async greet(): Promise<void> {
    this.send('+OK tiny\r\n');
  }
  protected override isPastPreAuth(): boolean {
    this.o.onPreAuthAsked?.();
    return false;
  }
  protected override faultStage(verb: string): { stage: FaultStage } | undefined {
    return verb === 'TLS' ? { stage: 'starttls' } : { stage: 'mail' };
  }
  protected async onLine(line: Buffer): Promise<void> {
    const text = line.toString('latin1');
    if (text === 'BIN') {
      this.send(Buffer.from([0x2b, 0x4f, 0x4b]));
      this.send(' bin\r\n');
    } else if (text === 'TLS') {
      if (await this.beforeCommand('TLS', '')) return;
      this.send('+OK go\r\n');
      await this.startTls(this.security);
    } else if (text === 'ZIP') {
      this.send('+OK zip\r\n');
      this.startCompression();
    } else if (text === 'FAULT') {
      if (await this.beforeCommand('FAULT', '')) return;
      this.send('+OK no fault\r\n');
    } else if (text === 'CONT' || text === 'CONTS') {
      let r = await this.readContinuation('+ go\r\n');
      // CONTS asks again after an over-long response, whose rest the next read skips.
      while (text === 'CONTS' && r.kind === 'too-long') r = await this.readContinuation('+ again\r\n');
      this.send(`+OK ${JSON.stringify(r)}\r\n`);
    } else if (text === 'BODY') {
      for await (const part of this.reader.readDotBody()) void part;
      this.send('+OK body\r\n');
    } else if (text.startsWith('LOGIN ')) {
      const password = text.slice(6);
      const authenticator: Authenticator = {
        supportsSharedSecrets: false,
        authenticate: async (r) => (r.password === 'ok' ? { ok: true, username: r.username } : { ok: false, reason: r.password === 'temp' ? 'temporary-failure' : 'invalid-credentials' }),
      };
      const request = { protocol: 'tiny', mechanism: 'PLAIN', username: 'tim', password, peer: peerInfo(this.connection, 'tiny') };
      const check = await this.checkLogin(authenticator, request, { delayMs: 1, maxFailures: 2 });
      this.send(`+OK ${JSON.stringify(check)}\r\n`);
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
    if (this.o.lenientGoodbye) await this.flush();
    else await this.end('idle-timeout');
  }
}

describe('protocol: TextSession log lines (mutation testing)', () => {
  let server: TcpServer | undefined;
  let client: LineClient | undefined;
  let lines: Line[] = [];
  let security: ServerSecurity;
  let ca: string;

  before(async () => {
    const certs = await testCertificates();
    security = new ServerSecurity({ certificate: certs.server });
    ca = certs.ca.cert;
  });
  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = server = undefined;
  });

  async function start(o: Options = {}, debug = false): Promise<LineClient> {
    lines = [];
    const log = new KeepingLogger(lines, debug);
    server = new TcpServer(
      {
        handle: async (c: Connection) => {
          const s = new TinySession(c, o, security);
          s.authThrottle = o.throttle;
          s.metrics = o.metrics;
          s.applyListenerLimits({ name: 'tinys' });
          const fault = o.fault;
          if (fault) s.faults = { injector: { decide: (_p, stage) => fault(stage) }, protocol: 'tiny' };
          await s.run();
        },
      },
      { port: 0, closeTimeoutMs: 100, name: 'tinys' },
      log,
    );
    const { port } = await server.start();
    client = await LineClient.connect(port);
    return client;
  }

  /** The session's own lines (not the listener's `listening`, `connection accepted`, `connection closed`). */
  function sessionLines(level?: string): Array<[string, string, Record<string, unknown>]> {
    const own = new Set(['listening', 'connection accepted', 'connection closed', 'closed']);
    return lines
      .filter((l) => !own.has(l.message) && (level === undefined || l.level === level))
      .map((l) => [l.level, l.message, Object.fromEntries(Object.entries(l.meta).filter(([k]) => !BOUND.has(k)))]);
  }

  /** Resolves with the reason of the `connection closed` line once it is logged. */
  async function closeReason(): Promise<unknown> {
    for (let i = 0; i < 500; i++) {
      const l = lines.find((x) => x.message === 'connection closed');
      if (l) return l.meta.reason;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('no "connection closed" line');
  }

  it('traces the wire at debug only when the logger keeps debug lines: text without its CRLF, bytes by size', async () => {
    const c = await start({}, true);
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('BIN', /^\+OK/)).to.deep.equal(['+OK bin']);
    expect(await c.command('CONT', /^\+ go$/)).to.deep.equal(['+ go']);
    expect(await c.command('secret', /^\+OK/)).to.deep.equal(['+OK {"kind":"line","text":"secret"}']);
    expect(sessionLines('debug')).to.deep.equal([
      ['debug', 'S: +OK tiny', {}],
      ['debug', 'S: [bytes]', { size: 3 }],
      ['debug', 'S:  bin', {}],
      ['debug', 'S: + go', {}],
      ['debug', 'C: [redacted]', {}],
      ['debug', 'S: +OK {"kind":"line","text":"secret"}', {}],
    ]);
  });

  it('writes no wire trace when the logger drops debug lines (the continuation stays redacted)', async () => {
    const c = await start({}, false);
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('BIN', /^\+OK/)).to.deep.equal(['+OK bin']);
    c.line('CONT');
    await c.expect(/^\+ go$/);
    expect(await c.command('  *  ', /^\+OK/)).to.deep.equal(['+OK {"kind":"cancelled"}']);
    expect(sessionLines('debug')).to.deep.equal([['debug', 'C: [redacted]', {}]]);
  });

  it('logs an over-long line, a bare LF and the spent error budget, and closes with reason closed', async () => {
    const c = await start({ limits: { maxLineLength: 10, maxBadCommands: 2 } });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('x'.repeat(20), /^-ERR/)).to.deep.equal(['-ERR too long']);
    c.send('A\nB\r\n');
    expect(await c.expect(/^-ERR too many/)).to.deep.equal(['-ERR too long', '-ERR too many errors']);
    await c.closed();
    expect(await closeReason()).to.equal('closed');
    expect(sessionLines()).to.deep.equal([
      ['warn', 'line too long', { max: 10 }],
      ['warn', 'bare LF in a command line', {}],
      ['warn', 'error budget spent, closing', { errors: 2 }],
    ]);
  });

  it('logs a line without end and closes', async () => {
    const c = await start({ limits: { maxLineLength: 10 } });
    await c.expect(/^\+OK tiny$/);
    c.send(Buffer.alloc(1024 * 1024 + 100, 0x78));
    expect(await c.expect(/^-ERR runaway$/)).to.deep.equal(['-ERR too long', '-ERR runaway']);
    await c.closed();
    expect(sessionLines()).to.deep.equal([
      ['warn', 'line too long', { max: 10 }],
      ['warn', 'line without end, closing', {}],
    ]);
  });

  it('logs over-long, bare-LF and endless SASL responses with the response limit', async () => {
    const c = await start({ limits: { maxLineLength: 10 } });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('CONT', /^\+ go$/)).to.deep.equal(['+ go']);
    expect(await c.command('y'.repeat(SASL_RESPONSE_MAX_LENGTH + 1), /^\+OK/)).to.deep.equal(['+OK {"kind":"too-long"}']);
    expect(await c.command('CONT', /^\+ go$/)).to.deep.equal(['+ go']);
    c.send('A\nB\r\n');
    expect(await c.expect(/^\+OK \{/)).to.deep.equal(['+OK {"kind":"bare-lf"}']);
    expect(await c.command('CONTS', /^\+ go$/)).to.deep.equal(['+ go']);
    c.send(Buffer.alloc(1024 * 1024 + SASL_RESPONSE_MAX_LENGTH + 100, 0x78));
    expect(await c.expect(/^-ERR runaway$/)).to.deep.equal(['+ again', '-ERR runaway']);
    await c.closed();
    expect(await closeReason()).to.equal('closed');
    expect(sessionLines()).to.deep.equal([
      ['warn', 'line too long', { max: SASL_RESPONSE_MAX_LENGTH }],
      ['warn', 'bare LF in a command line', {}],
      ['warn', 'line too long', { max: SASL_RESPONSE_MAX_LENGTH }],
      ['warn', 'line without end, closing', {}],
    ]);
  });

  it('closes with reason peer-closed when the client leaves', async () => {
    const c = await start();
    await c.expect(/^\+OK tiny$/);
    c.raw.end();
    expect(await closeReason()).to.equal('peer-closed');
    expect(sessionLines()).to.deep.equal([]);
  });

  it('logs an idle timeout with its limit and closes with reason idle-timeout', async () => {
    const c = await start({ limits: { idleTimeoutMs: 100 } });
    expect(await c.expect(/^-ERR/)).to.deep.equal(['+OK tiny', '-ERR timeout']);
    expect(await closeReason()).to.equal('idle-timeout');
    expect(sessionLines()).to.deep.equal([['info', 'idle timeout', { ms: 100 }]]);
  });

  it('logs a line not completed in time with its deadline and the octets buffered', async () => {
    const c = await start({ limits: { idleTimeoutMs: 10_000, commandTimeoutMs: 100 } });
    await c.expect(/^\+OK tiny$/);
    c.send('NOO');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR timeout']);
    expect(sessionLines()).to.deep.equal([['warn', 'line not completed in time, closing', { ms: 100, buffered: 3 }]]);
  });

  it('logs a body not completed in time with the body limit', async () => {
    const c = await start({ limits: { bodyTimeoutMs: 100 } });
    await c.expect(/^\+OK tiny$/);
    c.line('BODY');
    c.send('half a body\r\n');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR timeout']);
    expect(sessionLines()).to.deep.equal([['warn', 'body not completed in time, closing', { ms: 100 }]]);
  });

  it('logs the pre-authentication deadline with its limit', async () => {
    const c = await start({ limits: { preAuthTimeoutMs: 100 } });
    expect(await c.expect(/^-ERR/)).to.deep.equal(['+OK tiny', '-ERR timeout']);
    expect(sessionLines()).to.deep.equal([['warn', 'not authenticated in time, closing', { ms: 100 }]]);
  });

  it('says goodbye once when a second timer fires after the first goodbye', async () => {
    let asked!: () => void;
    const preAuthAsked = new Promise<void>((resolve) => (asked = resolve));
    // The idle goodbye does not end this session; the pre-authentication timer fires later on the same session.
    const c = await start({ limits: { idleTimeoutMs: 80, preAuthTimeoutMs: 250 }, lenientGoodbye: true, onPreAuthAsked: () => asked() });
    expect(await c.expect(/^-ERR/)).to.deep.equal(['+OK tiny', '-ERR timeout']);
    await preAuthAsked; // the timer has run; a second goodbye would have been logged by now
    expect(sessionLines()).to.deep.equal([['info', 'idle timeout', { ms: 80 }]]);
    expect(await c.command('NOOP', /^[+-]/)).to.deep.equal(['+OK NOOP']);
  });

  it('logs each fault with its stage and action: delay goes on, reply and disconnect at connect refuse', async () => {
    let c = await start({ fault: (stage) => (stage === 'greeting' ? { kind: 'delay', ms: 1 } : undefined) });
    expect(await c.expect(/^\+OK tiny$/)).to.deep.equal(['+OK tiny']);
    expect(sessionLines()).to.deep.equal([['info', 'fault injected', { stage: 'greeting', action: 'delay' }]]);
    await c.close();
    await server!.close();

    const asked: FaultStage[] = [];
    c = await start({ fault: (stage) => (asked.push(stage), stage === 'connect' ? { kind: 'reply', text: '-ERR go away' } : undefined) });
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR go away']);
    await c.closed();
    expect(await closeReason()).to.equal('refused');
    expect(asked).to.deep.equal(['connect']);
    expect(sessionLines()).to.deep.equal([['info', 'fault injected', { stage: 'connect', action: 'reply' }]]);
    await c.close();
    await server!.close();

    asked.length = 0;
    c = await start({ fault: (stage) => (asked.push(stage), stage === 'connect' ? { kind: 'disconnect' } : undefined) });
    await c.closed();
    expect(await closeReason()).to.equal('refused');
    expect(asked).to.deep.equal(['connect']);
    expect(sessionLines()).to.deep.equal([['info', 'fault injected', { stage: 'connect', action: 'disconnect' }]]);
  });

  it('drops the replies queued before a disconnect fault', async () => {
    const c = await start({ fault: (stage) => (stage === 'mail' ? { kind: 'disconnect' } : undefined) });
    await c.expect(/^\+OK tiny$/);
    c.send('NOOP\r\nFAULT\r\n');
    const got: string[] = [];
    for (;;) {
      const l = await c.readLine().catch(() => undefined);
      if (l === undefined) break;
      got.push(l);
    }
    expect(await closeReason()).to.equal('refused');
    // NOOP's reply was queued (FAULT was already buffered), then dropped with the connection.
    expect(got).to.deep.equal([]);
  });

  it('answers a fault reply to a command in place of the command, and goes on', async () => {
    const c = await start({ fault: (stage) => (stage === 'mail' ? { kind: 'reply', text: '-ERR not now' } : undefined) });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('FAULT', /^[+-]/)).to.deep.equal(['-ERR not now']);
    expect(await c.command('NOOP', /^[+-]/)).to.deep.equal(['+OK NOOP']);
  });

  it('logs the plaintext discarded after STARTTLS with its size, and nothing when there was none', async () => {
    let c = await start();
    await c.expect(/^\+OK tiny$/);
    c.send('TLS\r\nNOOP\r\n');
    await c.expect(/^\+OK go$/);
    await c.startTls({ ca, servername: 'localhost' });
    expect(await c.command('SECURE', /^\+OK/)).to.deep.equal(['+OK SECURE']);
    expect(sessionLines('warn')).to.deep.equal([['warn', 'discarded plaintext sent after the TLS command', { octets: 6 }]]);
    await c.close();
    await server!.close();

    c = await start();
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('TLS', /^\+OK go$/)).to.deep.equal(['+OK go']);
    await c.startTls({ ca, servername: 'localhost' });
    expect(await c.command('SECURE', /^\+OK/)).to.deep.equal(['+OK SECURE']);
    expect(sessionLines('warn')).to.deep.equal([]);
  });

  it('cuts off the handshake after a tls-abort fault, closing with reason tls-failed', async () => {
    const c = await start({ fault: (stage) => (stage === 'starttls' ? { kind: 'tls-abort' } : undefined) });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('TLS', /^\+OK go$/)).to.deep.equal(['+OK go']);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const t = tls.connect({ socket: c.raw, ca, servername: 'localhost' }, () => resolve(new Error('handshake completed')));
      t.once('error', resolve);
    });
    expect(err.code).to.be.oneOf(['ECONNRESET', 'EPIPE']);
    expect(await closeReason()).to.equal('tls-failed');
    expect(sessionLines()).to.deep.equal([['info', 'fault injected', { stage: 'starttls', action: 'tls-abort' }]]);
  });

  it('logs the data discarded before compression started with its size, and nothing when there was none', async () => {
    let c = await start();
    await c.expect(/^\+OK tiny$/);
    c.send('ZIP\r\nJUNK\r\n');
    await c.expect(/^\+OK zip$/);
    expect(sessionLines('warn')).to.deep.equal([['warn', 'discarded data sent before compression started', { octets: 6 }]]);
    await c.close();
    await server!.close();

    c = await start();
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('ZIP', /^\+OK zip$/)).to.deep.equal(['+OK zip']);
    expect(sessionLines('warn')).to.deep.equal([]);
  });

  it('logs failed, temporarily failed, throttled and last logins with the user, mechanism, count and delay', async () => {
    const auths: string[][] = [];
    const metrics: SessionMetrics = { command: () => undefined, auth: (...a) => void auths.push(a), message: () => undefined };
    const throttle = new AuthThrottle({ maxFailuresPerAddress: 3, maxDelayMs: 4 });
    const c = await start({ throttle, metrics });
    await c.expect(/^\+OK tiny$/);
    expect(await c.command('LOGIN temp', /^\+OK/)).to.deep.equal(['+OK {"ok":false,"why":"temporary","isLast":false}']);
    expect(await c.command('LOGIN bad', /^\+OK/)).to.deep.equal(['+OK {"ok":false,"why":"invalid","isLast":false}']);
    expect(await c.command('LOGIN bad', /^\+OK/)).to.deep.equal(['+OK {"ok":false,"why":"invalid","isLast":true}']);
    expect(await c.command('LOGIN bad', /^\+OK/)).to.deep.equal(['+OK {"ok":false,"why":"invalid","isLast":true}']);
    expect(await c.command('LOGIN ok', /^\+OK/)).to.deep.equal(['+OK {"ok":false,"why":"throttled","isLast":false}']);
    const who = { user: 'tim', mechanism: 'PLAIN' };
    expect(sessionLines()).to.deep.equal([
      ['warn', 'auth temporarily unavailable', who],
      ['info', 'auth failed', { ...who, failures: 1, delayMs: 1 }],
      ['info', 'auth failed', { ...who, failures: 2, delayMs: 2 }],
      ['warn', 'too many failed logins, closing', { failures: 2 }],
      ['info', 'auth failed', { ...who, failures: 3, delayMs: 4 }],
      ['warn', 'too many failed logins, closing', { failures: 3 }],
      ['warn', 'login refused: too many failed logins', { ...who, by: 'address' }],
    ]);
    expect(auths).to.deep.equal([
      ['tiny', 'PLAIN', 'failure'],
      ['tiny', 'PLAIN', 'failure'],
      ['tiny', 'PLAIN', 'failure'],
      ['tiny', 'PLAIN', 'throttled'],
    ]);
  });
});
