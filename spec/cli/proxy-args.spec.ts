import { expect } from 'chai';
import { parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';
import { runPostern } from './cli-process.js';

describe('cli: --proxy-protocol, --proxy-trusted, --proxy-listeners', () => {
  it('refuses --proxy-protocol without --proxy-trusted at start-up: one line, exit 2', async () => {
    const r = await runPostern(['--proxy-protocol']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal('postern: error: --proxy-protocol needs --proxy-trusted CIDR[,CIDR…] (the addresses of your proxies) (see postern --help)\n');
  });

  it('builds the config: trusted blocks, optional listener subset', () => {
    expect(parseCliArgs(['--proxy-protocol', '--proxy-trusted', '127.0.0.1/32, 10.0.0.0/8']).config.proxyProtocol).to.deep.equal({ trusted: ['127.0.0.1/32', '10.0.0.0/8'] });
    expect(parseCliArgs(['--proxy-protocol', '--proxy-trusted', '::1', '--proxy-listeners', 'smtp,IMAPS']).config.proxyProtocol).to.deep.equal({ trusted: ['::1'], listeners: ['smtp', 'imaps'] });
    expect(parseCliArgs([]).config.proxyProtocol).to.equal(undefined);
  });

  it('refuses bad blocks, unknown listeners and the satellites without --proxy-protocol', () => {
    const cases: Array<[string[], string]> = [
      [['--proxy-protocol', '--proxy-trusted', '10.0.0.0/40'], '--proxy-trusted: "10.0.0.0/40" is not a CIDR block (e.g. 10.0.0.0/8 or ::1/128)'],
      [['--proxy-protocol', '--proxy-trusted', 'haproxy.local'], '--proxy-trusted: "haproxy.local" is not a CIDR block (e.g. 10.0.0.0/8 or ::1/128)'],
      [['--proxy-protocol', '--proxy-trusted', ','], '--proxy-trusted: the PROXY protocol needs at least one trusted proxy address (CIDR)'],
      [['--proxy-protocol', '--proxy-trusted', '::1', '--proxy-listeners', 'smtp,ftp'], '--proxy-listeners: unknown listener "ftp" (use smtp, smtps, pop3, pop3s, imap, imaps, lmtp)'],
      [['--proxy-trusted', '::1'], '--proxy-trusted needs --proxy-protocol'],
      [['--proxy-listeners', 'smtp'], '--proxy-listeners needs --proxy-protocol'],
    ];
    for (const [argv, message] of cases) expect(() => parseCliArgs(argv), argv.join(' ')).to.throw(UsageError).with.property('message', message);
  });
});
