/**
 * The small protocol parts, pinned down by their mutation run (issue 16): the error names of `reply-error.ts`,
 * `admitSession`'s refusal and bug paths (with what it logs), and `SessionHandler` keeping the built-in SASL mechanisms
 * for an empty registry and releasing a session once its connection closed (real loopback sockets).
 */
import { expect } from 'chai';
import type { Connection } from '../../lib/core/connection.js';
import { TcpServer, type ListenerInfo } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { ProtocolSyntaxError, ReplyError } from '../../lib/protocol/reply-error.js';
import { SessionHandler, type ManagedSession } from '../../lib/protocol/session-handler.js';
import { admitSession } from '../../lib/protocol/session-hooks.js';
import { TextSession } from '../../lib/protocol/text-session.js';
import { LineClient } from '../support/line-client.js';

const log = createLogger({ silent: true });

class Refusal extends ReplyError {}

/** Answers `MECHS` with its SASL mechanism names; counts its releases. */
class MechSession extends TextSession implements ManagedSession {
  releases = 0;
  protected async greet(): Promise<void> {
    this.send('+OK\r\n');
  }
  protected async onLine(line: Buffer): Promise<void> {
    this.send(line.toString() === 'MECHS' ? `+OK ${this.saslMechanisms.map((m) => m.name).join(' ')}\r\n` : '-ERR\r\n');
  }
  protected async onLineTooLong(): Promise<void> {}
  protected async onTooManyErrors(): Promise<void> {}
  protected async onIdleTimeout(): Promise<void> {
    await this.end('idle-timeout');
  }
  async shutdown(): Promise<void> {
    await this.end('server-shutdown');
  }
  async release(): Promise<void> {
    this.releases++;
  }
}

class MechHandler extends SessionHandler<MechSession> {
  readonly created: MechSession[] = [];
  protected createSession(connection: Connection): MechSession {
    const s = new MechSession(connection);
    this.created.push(s);
    return s;
  }
  protected busyLine(): string {
    return '-ERR busy\r\n';
  }
}

describe('protocol: session parts (mutation testing)', () => {
  it('names its errors ReplyError and ProtocolSyntaxError', () => {
    expect(new Refusal('no').name).to.equal('ReplyError');
    expect(new ProtocolSyntaxError('bad').name).to.equal('ProtocolSyntaxError');
  });

  describe('admitSession', () => {
    function fake(): { sent: string[]; ended: string[]; logs: unknown[][]; session: Parameters<typeof admitSession>[0] } {
      const sent: string[] = [];
      const ended: string[] = [];
      const logs: unknown[][] = [];
      return {
        sent,
        ended,
        logs,
        session: {
          send: (l) => void sent.push(l),
          end: async (r) => void ended.push(r),
          log: { warn: (m, meta) => void logs.push(['warn', m, meta]), error: (m, meta) => void logs.push(['error', m, meta]) },
        },
      };
    }

    it('sends the refusal line, ends the session refused, and resolves false', async () => {
      const f = fake();
      const admitted = await admitSession(f.session, async () => Promise.reject(new Refusal('go away')), (e) => (e instanceof Refusal ? `-ERR ${e.message}\r\n` : undefined), '-ERR bug\r\n');
      expect([admitted, f.sent, f.ended, f.logs]).to.deep.equal([false, ['-ERR go away\r\n'], ['refused'], [['warn', 'session refused by policy', {}]]]);
    });

    it('sends the bug line for anything else, even a thrown undefined, and logs it', async () => {
      const f = fake();
      const admitted = await admitSession(f.session, async () => Promise.reject(undefined), () => undefined, '-ERR bug\r\n');
      expect([admitted, f.sent, f.ended, f.logs]).to.deep.equal([false, ['-ERR bug\r\n'], ['refused'], [['error', 'session hook failed', { error: undefined, stack: undefined }]]]);
      const g = fake();
      const err = new Error('boom');
      await admitSession(g.session, async () => Promise.reject(err), () => undefined, '-ERR bug\r\n');
      expect(g.logs).to.deep.equal([['error', 'session hook failed', { error: 'boom', stack: err.stack }]]);
    });
  });

  describe('SessionHandler', () => {
    let server: TcpServer | undefined;
    let client: LineClient | undefined;
    afterEach(async () => {
      await client?.close();
      await server?.close();
      client = server = undefined;
    });

    it('keeps the built-in mechanisms for an empty registry, and releases the session once its connection closed', async () => {
      const handler = new MechHandler();
      handler.saslMechanisms = [];
      let released!: () => void;
      const done = new Promise<void>((r) => (released = r));
      server = new TcpServer(
        {
          handle: async (c: Connection, l: ListenerInfo) => {
            await handler.handle(c, l);
            released();
          },
        },
        { port: 0, closeTimeoutMs: 100 },
        log,
      );
      const { port } = await server.start();
      client = await LineClient.connect(port);
      await client.expect(/^\+OK$/);
      expect(await client.command('MECHS', /^[+-]/)).to.deep.equal(['+OK PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256']);
      expect(handler.liveSessions.size).to.equal(1);
      await client.close();
      await done;
      expect(handler.liveSessions.size).to.equal(0);
      expect(handler.created.map((s) => s.releases)).to.deep.equal([1]);
    });
  });
});
