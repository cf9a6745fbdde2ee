/**
 * `postern --check`: reads the whole configuration (arguments, environment, `--config` file) and the TLS material
 * every listener would serve, as a start does, then says what would listen and exits, binding nothing. Like
 * `nginx -t` or `postfix check`: a bad flag, an unreadable certificate or a key that does not match fails with the
 * same one line and exit code 2 as a start would.
 */
import { ServerSecurityToken } from '../di/core.module.js';
import { assertOneCertificateSource, createMailServerContainer, listenerPort, type MailServerConfig } from '../di/mail-server.js';
import { listenerDescriptor } from '../di/protocols.js';
import { ListenerSecuritiesToken } from '../core/listener-securities.js';
import { readyLine } from './cluster-primary.js';

/** What a check says instead of a start's `ready on`. */
const WOULD_LISTEN = 'would listen on';

/** Checks `config` (see the module comment); resolves 0, or rejects with the error a start would have met. */
export async function checkConfig(config: MailServerConfig, out: (line: string) => void): Promise<number> {
  assertOneCertificateSource(config);
  // Warnings a start logs (the generated certificate) are said below in the check's own words.
  const container = createMailServerContainer({ ...config, log: { ...config.log, level: 'error' } });
  try {
    const security = container.get(ServerSecurityToken);
    await security.prepare();
    await container.get(ListenerSecuritiesToken, { optional: true })?.prepare();
    const host = config.host ?? '127.0.0.1';
    for (const name of config.only ?? []) {
      const tls = listenerDescriptor(name)?.listener?.implicitTls === true ? 'implicit' : 'starttls';
      out(readyLine({ name, host, port: listenerPort(config, name), tls }, WOULD_LISTEN));
    }
    const socket = config.lmtp && typeof config.lmtp === 'object' ? config.lmtp.socket : undefined;
    if (socket !== undefined) out(readyLine({ name: 'lmtp-socket', host: socket, port: 0, tls: 'starttls', path: socket }, WOULD_LISTEN));
    if (security.isSelfSigned) out('postern: no --cert/--pfx: a self-signed certificate would be generated at each start');
    out(`postern: configuration OK (${(config.users ?? []).length} user(s); nothing was started and the store was not opened)`);
    return 0;
  } finally {
    await container.unbindAllAsync();
  }
}
