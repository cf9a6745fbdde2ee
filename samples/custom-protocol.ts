/**
 * Sample: your own line protocol on Postern's TcpServer, with a STARTTLS-style upgrade.
 *
 * The "NOTE" protocol: `HELLO`, `UPGRADE` (switch to TLS in place), `ECHO text`, `WHO` (TLS facts), `QUIT`.
 * Run it with `node dist/samples/custom-protocol.js` and talk to it with
 * `openssl s_client -connect 127.0.0.1:4000 -starttls ...` is not possible (openssl does not know NOTE), so use
 * `nc 127.0.0.1 4000` for the plaintext part; the spec drives the upgrade.
 */
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { inject, injectable } from 'inversify';
import {
  type CommandTable,
  type Connection,
  ConnectionHandler,
  createContainer,
  SessionHandler,
  dispatch,
  type DispatchTarget,
  type GuardFailure,
  Logger,
  ReplyError,
  ServerSecurityToken,
  type ServerSecurity,
  TcpServerFactory,
  TextSession,
} from '../lib/index.js';

type NoteState = 'plain' | 'secure';

/** Refusals of the NOTE protocol. */
class NoteError extends ReplyError {}

/** One NOTE session: the base class brings framing, pipelining, error budget, timeouts and the TLS path. */
export class NoteSession extends TextSession implements DispatchTarget<NoteState> {
  state: NoteState = 'plain';
  readonly isAuthenticated = true;
  readonly allowsInsecureAuth = false;

  constructor(
    connection: Connection,
    private readonly security: ServerSecurity,
  ) {
    super(connection, { maxLineLength: 200, idleTimeoutMs: 30_000 });
  }

  protected async greet(): Promise<void> {
    this.send('+ NOTE ready\r\n');
  }

  protected async onLine(line: Buffer): Promise<void> {
    const text = line.toString('utf8');
    const sp = text.indexOf(' ');
    const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
    await dispatch(NOTE_COMMANDS, this, verb, sp === -1 ? '' : text.slice(sp + 1));
  }

  refuse(failure: GuardFailure, verb: string): void {
    this.send(`- ${failure} ${verb.slice(0, 20)}\r\n`);
  }

  sendReplyError(err: ReplyError): void {
    this.send(`- ${err.message}\r\n`);
  }

  protected async onLineTooLong(): Promise<void> {
    this.send('- line too long\r\n');
  }

  protected async onTooManyErrors(): Promise<void> {
    this.send('- too many errors, bye\r\n');
  }

  protected async onIdleTimeout(): Promise<void> {
    this.send('- idle, bye\r\n');
    await this.end('idle-timeout');
  }

  /** Server shutdown: say so, then close. */
  async shutdown(): Promise<void> {
    if (!this.isEnding) this.send('- server shutting down\r\n');
    await this.end('server-shutdown');
  }

  /** UPGRADE: go-ahead, then the shared TLS path (buffered plaintext is dropped there). */
  async upgrade(): Promise<void> {
    if (this.isSecure) throw new NoteError('already secure');
    this.send('+ go ahead\r\n');
    if (await this.startTls(this.security)) this.state = 'secure';
  }
}

const BOTH = ['plain', 'secure'] as const;
/** The whole NOTE surface. */
export const NOTE_COMMANDS: CommandTable<NoteState, NoteSession> = {
  HELLO: { states: BOTH, args: 'none', run: (s) => s.send('+ hello\r\n') },
  ECHO: { states: BOTH, args: 'required', run: (s, a) => s.send(`+ ${a}\r\n`) },
  UPGRADE: { states: ['plain'], args: 'none', run: (s) => s.upgrade() },
  WHO: {
    states: BOTH,
    args: 'none',
    run: (s) => {
      const sec = s.connection.security;
      s.send(`+ tls=${sec.tls} protocol=${sec.protocol ?? '-'} cert=${sec.peerCertificate?.subject.replace(/\n/g, ',') ?? '-'} policy=${sec.policyErrors}\r\n`);
    },
  },
  QUIT: {
    states: BOTH,
    args: 'none',
    run: async (s) => {
      s.send('+ bye\r\n');
      await s.end();
    },
  },
};

/**
 * The ConnectionHandler that TcpServer calls for each connection. `SessionHandler` tracks the sessions, so a server
 * shutdown reaches each one's `shutdown()`, and refuses clients of a full listener with the busy line.
 */
@injectable()
export class NoteHandler extends SessionHandler<NoteSession> {
  constructor(@inject(ServerSecurityToken) private readonly security: ServerSecurity) {
    super();
  }
  protected createSession(connection: Connection): NoteSession {
    return new NoteSession(connection, this.security);
  }
  protected busyLine(): string {
    return '- busy\r\n';
  }
}

/** Starts NOTE on 127.0.0.1:4000 with a generated certificate until Ctrl-C. */
async function main(): Promise<void> {
  const container = createContainer({ log: { level: 'debug' } });
  container.bind(ConnectionHandler).to(NoteHandler).inSingletonScope();
  const server = container.get(TcpServerFactory)(container.get(ConnectionHandler), { name: 'note', port: 4000 });
  const addr = await server.start();
  container.get(Logger).info('NOTE ready', { port: addr.port });
  process.once('SIGINT', () => void server.close());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) void main();
