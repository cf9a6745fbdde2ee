import { expect } from 'chai';
import { ContainerModule, type Container } from 'inversify';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { SslProtocols } from '../../lib/core/ssl-protocols.js';
import { ConnectionHandler, TcpServer, TcpServerOptions } from '../../lib/core/tcp-server.js';
import { ServerSecurityToken, TcpServerFactory } from '../../lib/di/core.module.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Logger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { buildContainer, prefixedLogger, startWithLogger } from '../../samples/rebind-logger.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

interface Line {
  level: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A Logger that records every line with its bound metadata. */
function recordingLogger(lines: Line[], bound: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (message: string, meta: Record<string, unknown> = {}): void => {
      lines.push({ level, message, meta: { ...bound, ...meta } });
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (m) => recordingLogger(lines, { ...bound, ...m }) };
}

const noteModule = new ContainerModule(({ bind }) => {
  bind(ConnectionHandler).to(NoteHandler).inSingletonScope();
});

describe("core: TcpServer from a user's own container with a piece rebound", () => {
  let certs: DevCertificates;
  const containers: Container[] = [];
  const servers: TcpServer[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(containers.splice(0).map((c) => c.unbindAllAsync()));
  });

  function own(lines: Line[]): Container {
    const container = createContainer({ tls: { certificate: certs.server } }, [noteModule]);
    container.rebind(Logger).toConstantValue(recordingLogger(lines));
    containers.push(container);
    return container;
  }

  it('logs through the rebound Logger from the factory-built server, its connections and ServerSecurity', async () => {
    const lines: Line[] = [];
    const container = own(lines);
    const server = container.get(TcpServerFactory)(container.get(ConnectionHandler), { name: 'mine', port: 0 });
    servers.push(server);
    const { port } = await server.start();
    const c = await LineClient.connect(port);
    clients.push(c);
    expect(await c.readLine()).to.equal('+ NOTE ready');
    c.line('UPGRADE');
    expect(await c.readLine()).to.equal('+ go ahead');
    await c.startTls({ ca: certs.ca.cert, servername: 'localhost' });
    expect(await c.command('WHO', /^\+ tls=true/)).to.have.length(1);
    await container.get(ServerSecurityToken).reload();

    const messages = lines.map((l) => l.message);
    expect(messages).to.include.members(['listening', 'connection accepted', 'tls established', 'certificate reloaded']);
    const accepted = lines.find((l) => l.message === 'connection accepted');
    expect(accepted?.meta).to.include({ listener: 'mine' });
    expect(accepted?.meta.cid).to.be.a('string');
  });

  it('resolves an injectable TcpServer bound with toSelf(), and closes it on unbindAllAsync (@preDestroy)', async () => {
    const lines: Line[] = [];
    const container = own(lines);
    container.bind(TcpServerOptions).toConstantValue({ name: 'resolved', port: 0, closeTimeoutMs: 300 });
    container.bind(TcpServer).toSelf().inSingletonScope();
    const server = container.get(TcpServer);
    expect(container.get(TcpServer)).to.equal(server);
    const { port } = await server.start();
    const c = await LineClient.connect(port);
    clients.push(c);
    expect(await c.command('HELLO', /hello/)).to.deep.equal(['+ NOTE ready', '+ hello']);

    containers.splice(containers.indexOf(container), 1);
    await container.unbindAllAsync();
    await c.closed();
    const refused = await LineClient.connect(port).then(
      (x) => {
        clients.push(x);
        return false;
      },
      () => true,
    );
    expect(refused, 'the listener should be closed').to.equal(true);
    expect(lines.filter((l) => l.meta.listener === 'resolved').map((l) => l.message)).to.include.members(['listening', 'closed']);
  });

  it('uses a rebound ServerSecurity for STARTTLS-style upgrades', async () => {
    const container = own([]);
    container.rebind(ServerSecurityToken).toConstantValue(new ServerSecurity({ certificate: certs.server, protocols: SslProtocols.Tls12 }));
    const server = container.get(TcpServerFactory)(container.get(ConnectionHandler), { port: 0 });
    servers.push(server);
    const { port } = await server.start();
    const c = await LineClient.connect(port);
    clients.push(c);
    await c.command('UPGRADE', /go ahead/);
    const s = await c.startTls({ ca: certs.ca.cert, servername: 'localhost' });
    expect(s.getProtocol()).to.equal('TLSv1.2');
  });

  describe('samples/rebind-logger', () => {
    it('buildContainer rebinds the Logger', () => {
      const mine = prefixedLogger(() => undefined);
      const container = buildContainer(mine);
      containers.push(container);
      expect(container.get(Logger)).to.equal(mine);
    });

    it('serves NOTE and writes "[my-app]" lines with cid, redacting secret-looking keys', async () => {
      const out: string[] = [];
      const running = await startWithLogger(
        prefixedLogger((line) => out.push(line)),
        0,
      );
      try {
        const c = await LineClient.connect(running.server.address().port);
        clients.push(c);
        expect(await c.command('QUIT', /bye/)).to.deep.equal(['+ NOTE ready', '+ bye']);
        await c.closed();
        running.container.get(Logger).child({ cid: 'x' }).info('probe', { password: 'hunter2' });
      } finally {
        await running.close();
      }
      expect(out.find((l) => l.startsWith('[my-app] info listening '))).to.be.a('string');
      expect(out.find((l) => /^\[my-app\] debug connection accepted .*cid=c/.test(l))).to.be.a('string');
      expect(out.find((l) => /^\[my-app\] info connection closed .*cid=c.* reason=closed/.test(l))).to.be.a('string');
      expect(out).to.include('[my-app] info probe cid=x password=[redacted]');
      expect(out.join('\n')).to.not.contain('hunter2');
    });
  });
});
