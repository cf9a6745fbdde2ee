/**
 * Issue 14, metrics: `postern --metrics-port` serves prom-client metrics over plain HTTP; after real traffic (SMTP
 * STARTTLS + AUTH + DATA with nodemailer, POP3 STLS, IMAPS logins, a refused connection, a failed handshake) the
 * scrape shows the matching counters.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { Registry } from 'prom-client';
import { MetricsServer } from '../../lib/metrics/metrics-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { startPostern, type PosternProcess } from '../cli/cli-process.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

/** `name{labels} value` lines of a scrape, as a map from the series text to its value. */
function parse(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

describe('metrics: the --metrics-port listener', function () {
  this.timeout(30_000);
  let dir: string;
  let p: PosternProcess | undefined;
  const clients: LineClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await p?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts connections, TLS, STARTTLS, logins, messages, commands and store operations from real traffic', async () => {
    const certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-metrics-'));
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
    const ports = ['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'http'].flatMap((n) => [`--${n}-port`, '0']);
    p = startPostern([...ports, '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem'), '--user', 'alice:secret@example.test', '--metrics-port', '0', '--max-connections-per-address', '2']);
    await p.ready(6);
    const metricsLine = p.stdout.find((l) => l.startsWith('postern: metrics ready on '));
    expect(metricsLine).to.match(/^postern: metrics ready on http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const url = metricsLine!.slice('postern: metrics ready on '.length);
    const trust = { ca: certs.ca.cert, servername: 'localhost' };

    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: p.ports.smtp, requireTLS: true, tls: trust, auth: { user: 'alice', pass: 'secret' } });
    await transport.sendMail({ from: 'bob@remote.test', to: 'alice@example.test', subject: 'metrics', text: 'x'.repeat(1000) });
    transport.close();

    const pop = await LineClient.connect(p.ports.pop3);
    clients.push(pop);
    await pop.expect(/^\+OK/);
    await pop.command('STLS', /^\+OK/);
    await pop.startTls(trust);
    await pop.command('USER alice', /^\+OK/);
    await pop.command('PASS secret', /^\+OK/);
    await pop.command('STAT', /^\+OK/);

    const imap = await LineClient.connect(p.ports.imaps, { tls: trust });
    clients.push(imap);
    await imap.expect(/^\* OK/);
    await imap.command('a LOGIN alice wrong', /^a NO/);
    await imap.command('b LOGIN alice secret', /^b OK/);
    await imap.command('c SELECT INBOX', /^c OK/);
    const second = await LineClient.connect(p.ports.imaps, { tls: trust });
    clients.push(second);
    await second.expect(/^\* OK/);
    const third = await LineClient.connect(p.ports.imaps, { tls: trust }); // over --max-connections-per-address 2
    clients.push(third);
    expect(await third.readLine()).to.equal('* BYE Too many connections, try later');
    await third.closed();

    const garbage = net.connect(p.ports.smtps, '127.0.0.1');
    garbage.on('error', () => undefined);
    garbage.end('GET / HTTP/1.0\r\n\r\n');
    await new Promise((r) => garbage.once('close', r));

    const res = await fetch(url);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const m = parse(await res.text());
    const get = (series: string): number | undefined => m.get(series);
    expect(get('postern_connections_accepted_total{listener="smtp"}')).to.equal(1);
    expect(get('postern_connections_accepted_total{listener="imaps"}')).to.equal(2);
    expect(get('postern_connections_refused_total{listener="imaps",reason="address-limit"}')).to.equal(1);
    expect(get('postern_connections_open{listener="imaps"}')).to.equal(2);
    expect(get('postern_connections_open{listener="smtp"}')).to.equal(0);
    expect(get('postern_starttls_upgrades_total{listener="smtp"}')).to.equal(1);
    expect(get('postern_starttls_upgrades_total{listener="pop3"}')).to.equal(1);
    const handshakes = [...m].filter(([k]) => k.startsWith('postern_tls_handshakes_total{listener="imaps",version="TLSv1.3",cipher="TLS_'));
    expect(handshakes.reduce((n, [, v]) => n + v, 0)).to.equal(2); // the two sessions (a refused connection is counted as refused only)
    expect(get('postern_tls_handshake_failures_total{listener="smtps",reason="protocol"}')).to.equal(1);
    expect(get('postern_auth_attempts_total{protocol="smtp",mechanism="PLAIN",result="success"}')).to.equal(1);
    expect(get('postern_auth_attempts_total{protocol="imap",mechanism="IMAP-LOGIN",result="failure"}')).to.equal(1);
    expect(get('postern_auth_attempts_total{protocol="imap",mechanism="IMAP-LOGIN",result="success"}')).to.equal(1);
    expect(get('postern_auth_attempts_total{protocol="pop3",mechanism="USER",result="success"}')).to.equal(1);
    expect(get('postern_messages_total{result="accepted"}')).to.equal(1);
    expect(get('postern_message_bytes_total{result="accepted"}')).to.be.greaterThan(1000);
    expect(get('postern_command_duration_seconds_count{protocol="imap",command="SELECT"}')).to.equal(1);
    expect(get('postern_command_duration_seconds_count{protocol="pop3",command="STAT"}')).to.equal(1);
    expect(get('postern_command_duration_seconds_count{protocol="smtp",command="DATA"}')).to.equal(1);
    expect(get('postern_store_operation_duration_seconds_count{operation="openUser",outcome="ok"}')).to.be.at.least(2);
    expect(get('postern_store_operation_duration_seconds_count{operation="lock",outcome="ok"}')).to.equal(1);

    expect((await fetch(url.replace('/metrics', '/other'))).status).to.equal(404);
    expect((await fetch(url, { method: 'POST' })).status).to.equal(405);
  });

  it('MetricsServer serves any prom-client registry and closes cleanly', async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ app: 'spec' });
    const server = new MetricsServer(registry, createLogger({ silent: true }));
    const { port } = await server.start();
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).to.equal(200);
    await server.close();
    await server.close();
  });
});
