import type { Connection } from '../core/connection.js';
import type { ListenerSecurities } from '../core/listener-securities.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ConnectionHandler, ListenerInfo } from '../core/tcp-server.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { SessionMetrics } from './session-metrics.js';
import type { FaultInjector } from './faults.js';
import type { SaslMechanism } from './sasl/sasl-mechanism.js';
import type { TextSession } from './text-session.js';

/** What {@link SessionHandler} needs from a protocol session beyond {@link TextSession}. */
export interface ManagedSession extends TextSession {
  /** Says the protocol's goodbye for a server shutdown (`421`, `-ERR [SYS/TEMP]`, `* BYE`) and closes. */
  shutdown(): Promise<void>;
  /** Frees what the session holds (store views, locks, watches). Idempotent; called once the session is over. */
  release?(): Promise<void>;
}

/**
 * The {@link ConnectionHandler} every text protocol needs: one session per connection, tracked so that a server
 * shutdown can ask each one to say goodbye, and released when it ends however it ends. Subclasses only say how
 * to build a session and what to tell a client refused because the listener is full.
 */
export abstract class SessionHandler<S extends ManagedSession> implements ConnectionHandler {
  private readonly sessions = new Map<Connection, S>();
  private loading?: Promise<void>;
  private loaded = false;
  /** Shared failed-login counters handed to every session (the protocol modules set it from the `AuthThrottle` token). */
  authThrottle?: AuthThrottle;
  /** Metrics handed to every session (the protocol modules set it from the `PosternMetrics` token). */
  metrics?: SessionMetrics;
  /** The SASL registry handed to every session (the protocol modules set it from the `SaslMechanism` multi-binding). */
  saslMechanisms?: readonly SaslMechanism[];
  /** Run after every successful login (the container's user-directory bridge); handed to every session. */
  userDirectory?: (username: string) => Promise<void>;
  /** Fault injection for new sessions (the test double's chaos); set by the assembly, none by default. */
  faults?: FaultInjector;
  /** Per-listener TLS configurations (the protocol modules set it from the `ListenerSecurities` token); none: `fallback` everywhere. */
  securities?: ListenerSecurities;

  /** The TLS configuration a session on `listener` upgrades with: the listener's own, else `fallback` (the shared one). */
  protected listenerSecurity(listener: ListenerInfo, fallback: ServerSecurity): ServerSecurity {
    return this.securities?.hasOwnSecurity(listener.name) ? this.securities.securityFor(listener.name) : fallback;
  }

  /** Builds the session for one accepted (and, on implicit-TLS listeners, already secured) connection. */
  protected abstract createSession(connection: Connection, listener: ListenerInfo): S;

  /**
   * Loads the session code that `createSession` needs, once; nothing by default. IMAP and POP3 `import()` their
   * session and command modules here, so `import 'postern'` does not evaluate them (issue 11: start time).
   */
  protected async loadSessionCode(): Promise<void> {}

  /** Loads the session code once ({@link loadSessionCode}); `TcpServer.start()` awaits it before listening. */
  prepare(): Promise<void> {
    this.loading ??= this.loadSessionCode().then(() => {
      this.loaded = true;
    });
    return this.loading;
  }

  /** The line a connection refused by a cap gets before the close (on implicit-TLS listeners, after the handshake). */
  protected abstract busyLine(): string;

  /** Live sessions (read-only view). */
  get liveSessions(): ReadonlyMap<Connection, S> {
    return this.sessions;
  }

  /** Runs one session until its connection closes, then releases it. */
  async handle(connection: Connection, listener: ListenerInfo): Promise<void> {
    // Called without TcpServer.start() (a hand-made accept loop): load now, holding the peer's bytes meanwhile.
    const held = !this.loaded;
    if (held) {
      connection.pause();
      await this.prepare();
    }
    const session = this.createSession(connection, listener);
    if (held) connection.resume();
    session.applyListenerLimits(listener);
    session.authThrottle = this.authThrottle;
    session.metrics = this.metrics;
    if (this.saslMechanisms && this.saslMechanisms.length > 0) session.saslMechanisms = this.saslMechanisms;
    session.userDirectory = this.userDirectory;
    // smtps → smtp: a rule names the protocol; both of its listeners follow it.
    if (this.faults) session.faults = { injector: this.faults, protocol: protocolOf(listener.name) };
    this.sessions.set(connection, session);
    try {
      await session.run();
    } finally {
      this.sessions.delete(connection);
      await session.release?.();
    }
  }

  /** Implicit-TLS accept: a `tls-abort` rule at stage `starttls` cuts the handshake off before it starts. */
  beforeHandshake(_connection: Connection, listener: ListenerInfo): boolean {
    if (!this.faults) return true;
    return this.faults.decide(protocolOf(listener.name), 'starttls', [], (a) => a.kind === 'tls-abort') === undefined;
  }

  /** Over a connection cap: the busy line (after the handshake on implicit-TLS listeners). TcpServer closes the connection afterwards. */
  refuse(connection: Connection, _listener: ListenerInfo): void {
    connection.write(this.busyLine());
  }

  /** Server closing: the session's goodbye; a connection still in its implicit-TLS handshake just closes. */
  async shutdown(connection: Connection): Promise<void> {
    const session = this.sessions.get(connection);
    if (session) await session.shutdown();
    else await connection.close('server-shutdown');
  }
}

/** The protocol a listener speaks, for fault rules: `smtps` → `smtp`, `lmtp-socket` → `lmtp`. */
function protocolOf(listener: string): string {
  return listener.replace(/-socket$/, '').replace(/s$/, '');
}
