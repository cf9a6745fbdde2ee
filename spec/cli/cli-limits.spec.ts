import { expect } from 'chai';
import { parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';

describe('cli: limit flags', () => {
  it('maps --max-connections*, --pre-auth-timeout and --command-timeout (seconds) into config.limits', () => {
    const { config } = parseCliArgs([
      '--max-connections', '500',
      '--max-connections-per-address', '20',
      '--max-connections-per-address-total', '40',
      '--max-connections-total', '0',
      '--pre-auth-timeout', '90',
      '--command-timeout', '30',
    ]);
    expect(config.limits).to.deep.equal({
      maxConnections: 500,
      maxConnectionsPerAddress: 20,
      maxConnectionsPerAddressTotal: 40,
      maxConnectionsTotal: 0,
      preAuthTimeoutMs: 90_000,
      commandTimeoutMs: 30_000,
    });
    expect(parseCliArgs([]).config.limits).to.deep.equal({});
    expect(parseCliArgs(['--auth-failures-per-address', '5', '--auth-failures-per-account', '0']).config.authThrottle).to.deep.equal({
      maxFailuresPerAddress: 5,
      maxFailuresPerAccount: 0,
    });
  });

  it('refuses a limit that is not a whole number with one clear line', () => {
    expect(() => parseCliArgs(['--pre-auth-timeout', '2m'])).to.throw(UsageError, '--pre-auth-timeout: expected a whole number, got "2m"');
    expect(() => parseCliArgs(['--max-connections-per-address', '-1'])).to.throw(UsageError, /--max-connections-per-address/);
  });
});
