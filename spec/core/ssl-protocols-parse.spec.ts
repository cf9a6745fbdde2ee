/**
 * The TLS version vocabulary as written in configuration and on the CLI (`--tls-min`, `protocols`): every spelling
 * parseSslProtocols accepts, protocolsFrom, and toVersionRange's range and legacy flag (issue 16: the handshake specs
 * reach these only through one or two spellings).
 */
import { expect } from 'chai';
import { DEFAULT_PROTOCOLS, parseSslProtocols, protocolsFrom, SslProtocols, SslProtocolsError, toVersionRange } from '../../lib/core/ssl-protocols.js';

const { Tls, Tls11, Tls12, Tls13, None } = SslProtocols;

describe('core: SslProtocols parsing and ranges', () => {
  const spellings: Array<[string, number]> = [
    ['1.2', Tls12],
    ['1.3', Tls13],
    ['12', Tls12],
    ['13', Tls13],
    ['tls12', Tls12],
    ['TLSv1.3', Tls13],
    ['Tls12|Tls13', Tls12 | Tls13],
    [' TLSv1.2,  TLSv1.3 ', Tls12 | Tls13],
    ['tls_12', Tls12],
    ['1.1', Tls11],
    ['11', Tls11],
    ['tlsv1.1', Tls11],
    ['1', Tls],
    ['1.0', Tls],
    ['10', Tls],
    ['tls', Tls],
    ['TLSv1', Tls],
    ['1.0 1.1 1.2 1.3', Tls | Tls11 | Tls12 | Tls13],
    ['', None],
  ];
  for (const [text, flags] of spellings) {
    it(`reads ${JSON.stringify(text)} as ${flags}`, () => {
      expect(parseSslProtocols(text)).to.equal(flags);
    });
  }

  it('refuses versions it does not know, naming them', () => {
    for (const bad of ['ssl3', '1.4', 'tls1_2', '2', '12tls']) { // 'tls' is a prefix only
      expect(() => parseSslProtocols(bad), bad).to.throw(SslProtocolsError, `unknown TLS version "${bad}"`);
    }
  });

  it('widens a minimum to every later version', () => {
    expect(protocolsFrom(Tls)).to.equal(Tls | Tls11 | Tls12 | Tls13);
    expect(protocolsFrom(Tls11)).to.equal(Tls11 | Tls12 | Tls13);
    expect(protocolsFrom(Tls12)).to.equal(DEFAULT_PROTOCOLS);
    expect(protocolsFrom(Tls13)).to.equal(Tls13);
  });

  it('maps sets to Node version ranges, marking anything below TLS 1.2 as legacy', () => {
    expect(toVersionRange()).to.deep.equal({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', legacy: false });
    expect(toVersionRange(None)).to.deep.equal({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', legacy: false });
    expect(toVersionRange(Tls13)).to.deep.equal({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', legacy: false });
    expect(toVersionRange(Tls11 | Tls12)).to.deep.equal({ minVersion: 'TLSv1.1', maxVersion: 'TLSv1.2', legacy: true });
    expect(toVersionRange(Tls)).to.deep.equal({ minVersion: 'TLSv1', maxVersion: 'TLSv1', legacy: true });
  });

  it('names the unknown bits and refuses holes', () => {
    expect(() => toVersionRange(48 | Tls12)).to.throw(SslProtocolsError, 'unsupported SslProtocols flags: 48 (SSL 2/3 are never offered)');
    expect(() => toVersionRange(Tls | Tls12)).to.throw(SslProtocolsError, 'SslProtocols must be a contiguous range of versions');
    expect(() => parseSslProtocols('ssl3')).to.throw().with.property('name', 'SslProtocolsError');
  });
});
