import net from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import type { Container } from 'inversify';
import { Connection } from '../../lib/core/connection.js';
import { createContainer } from '../../lib/di/create-container.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { ImapServer } from '../../lib/imap/imap-server.js';
import { Pop3Server } from '../../lib/pop3/pop3-server.js';
import type { ConnectionHandler } from '../../lib/core/tcp-server.js';
import { LineClient } from '../support/line-client.js';
import { RecordingLogger } from '../support/recording-logger.js';

// IMAP and POP3 load their session code in prepare() (TcpServer.start awaits it), not at `import 'postern'`.
// A handler driven by a hand-made accept loop, never prepared, must still serve: handle() loads the code itself
// and holds the peer's bytes meanwhile (here the client pipelines its commands before the greeting).
describe('SessionHandler without TcpServer.start (session code loaded by the first handle)', function () {
  let container: Container;
  let server: net.Server | undefined;
  let client: LineClient | undefined;

  beforeEach(function () {
    container = createContainer({ log: { level: 'error' }, imap: { imap: { port: 0 } }, pop3: { pop3: { port: 0 } } }, [memoryModule, imapModule, pop3Module]);
  });

  afterEach(async function () {
    await client?.close();
    client = undefined;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    await container.unbindAllAsync();
  });

  async function serve(handler: ConnectionHandler, name: string): Promise<number> {
    const log = new RecordingLogger();
    server = net.createServer((socket) => void handler.handle(new Connection(socket, log), { name, implicitTls: false, port: 0 }));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as net.AddressInfo).port;
  }

  it('IMAP: greets and answers commands sent before the greeting', async function () {
    const port = await serve(container.get(ImapServer), 'imap');
    client = await LineClient.connect(port);
    client.send('a1 CAPABILITY\r\na2 NOOP\r\n');
    await client.expect(/^\* OK /);
    await client.expect(/^a1 OK/);
    await client.expect(/^a2 OK/);
  });

  it('POP3: greets and answers commands sent before the greeting', async function () {
    const port = await serve(container.get(Pop3Server), 'pop3');
    client = await LineClient.connect(port);
    client.send('CAPA\r\nQUIT\r\n');
    const greeting = await client.expect(/^\+OK/);
    expect(greeting[0]).to.match(/^\+OK /);
    await client.expect(/^\.$/); // end of the CAPA list
    await client.expect(/^\+OK/);
  });
});
