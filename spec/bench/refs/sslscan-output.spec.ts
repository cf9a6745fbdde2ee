import { expect } from 'chai';
import { sslscanFindings } from '../../../bench/refs/sslscan-output.js';

/** sslscan 2.0.7 `--xml=-` against Postern's STARTTLS SMTP listener with its defaults (abridged: no certificate block). */
const POSTERN = `<?xml version="1.0" encoding="UTF-8"?>
<document title="SSLScan Results" version="2.0.7" web="http://github.com/rbsec/sslscan">
 <ssltest host="127.0.0.1" sniname="127.0.0.1" port="23025">
  <protocol type="ssl" version="2" enabled="0" />
  <protocol type="ssl" version="3" enabled="0" />
  <protocol type="tls" version="1.0" enabled="0" />
  <protocol type="tls" version="1.1" enabled="0" />
  <protocol type="tls" version="1.2" enabled="1" />
  <protocol type="tls" version="1.3" enabled="1" />
  <renegotiation supported="0" secure="0" />
  <heartbleed sslversion="TLSv1.3" vulnerable="0" />
  <heartbleed sslversion="TLSv1.2" vulnerable="0" />
  <cipher status="preferred" sslversion="TLSv1.3" bits="256" cipher="TLS_AES_256_GCM_SHA384" id="0x1302" strength="acceptable" curve="25519" ecdhebits="253" />
  <cipher status="accepted" sslversion="TLSv1.3" bits="256" cipher="TLS_CHACHA20_POLY1305_SHA256" id="0x1303" strength="acceptable" curve="25519" ecdhebits="253" />
  <cipher status="accepted" sslversion="TLSv1.3" bits="128" cipher="TLS_AES_128_GCM_SHA256" id="0x1301" strength="acceptable" curve="25519" ecdhebits="253" />
  <cipher status="preferred" sslversion="TLSv1.2" bits="128" cipher="ECDHE-ECDSA-AES128-GCM-SHA256" id="0xC02B" strength="strong" curve="25519" ecdhebits="253" />
  <cipher status="accepted" sslversion="TLSv1.2" bits="256" cipher="ECDHE-ECDSA-AES256-GCM-SHA384" id="0xC02C" strength="strong" curve="25519" ecdhebits="253" />
  <cipher status="accepted" sslversion="TLSv1.2" bits="256" cipher="ECDHE-ECDSA-CHACHA20-POLY1305" id="0xCCA9" strength="strong" curve="25519" ecdhebits="253" />
  <group sslversion="TLSv1.3" bits="128" name="secp256r1 (NIST P-256)" id="0x0017" />
  <group sslversion="TLSv1.3" bits="192" name="secp384r1 (NIST P-384)" id="0x0018" />
  <group sslversion="TLSv1.3" bits="128" name="x25519" id="0x001d" />
  <group sslversion="TLSv1.2" bits="128" name="secp256r1 (NIST P-256)" id="0x0017" />
 <certificates>
  <certificate type="short">
   <expired>false</expired>
  </certificate>
 </certificates>
 </ssltest>
</document>`;

/** The same scan of a bare node:tls server with minVersion TLSv1 and 'DEFAULT:@SECLEVEL=0' (abridged). */
const WEAK = `<document title="SSLScan Results" version="2.0.7">
 <ssltest host="127.0.0.1" sniname="127.0.0.1" port="2699">
  <protocol type="ssl" version="3" enabled="0" />
  <protocol type="tls" version="1.0" enabled="1" />
  <protocol type="tls" version="1.1" enabled="1" />
  <protocol type="tls" version="1.2" enabled="1" />
  <renegotiation supported="1" secure="1" />
  <heartbleed sslversion="TLSv1.0" vulnerable="0" />
  <cipher status="preferred" sslversion="TLSv1.2" bits="256" cipher="ECDHE-ECDSA-AES256-GCM-SHA384" id="0xC02C" strength="strong" curve="25519" ecdhebits="253" />
  <cipher status="accepted" sslversion="TLSv1.2" bits="128" cipher="ECDHE-ECDSA-AES128-SHA256" id="0xC023" strength="acceptable" curve="25519" ecdhebits="253" />
  <cipher status="preferred" sslversion="TLSv1.0" bits="256" cipher="ECDHE-ECDSA-AES256-SHA" id="0xC00A" strength="acceptable" curve="25519" ecdhebits="253" />
  <group sslversion="TLSv1.3" bits="128" name="x25519" id="0x001d" />
  <group sslversion="TLSv1.3" bits="112" name="ffdhe2048" id="0x0100" />
  <group sslversion="TLSv1.3" bits="192" name="ffdhe8192" id="0x0104" />
  <certificate type="short"><expired>true</expired></certificate>
 </ssltest>
</document>`;

describe('bench: reading sslscan reports for the TLS audit', () => {
  it("finds nothing in Postern's default configuration", () => {
    expect(sslscanFindings(POSTERN)).to.deep.equal([]);
  });

  it('names each weakness of a permissive server, CBC suites and finite-field groups included (sslscan rates those fine)', () => {
    expect(sslscanFindings(WEAK)).to.deep.equal([
      'protocol TLS 1.0 is enabled',
      'protocol TLS 1.1 is enabled',
      'client-initiated renegotiation is supported',
      'TLSv1.2 cipher ECDHE-ECDSA-AES128-SHA256 is not AEAD (CBC: Lucky13)',
      'TLSv1.0 cipher ECDHE-ECDSA-AES256-SHA is not AEAD (CBC: Lucky13)',
      'TLSv1.3 key-exchange group ffdhe2048 gives 112 bits',
      'TLSv1.3 key-exchange group ffdhe8192 is finite-field (costly to serve)',
      'the certificate has expired',
    ]);
  });

  it('flags the rest of what it checks: SSL, insecure renegotiation, compression, no fallback SCSV, Heartbleed, weak ciphers', () => {
    const report = `<ssltest host="h" port="1">
      <protocol type="ssl" version="3" enabled="1" />
      <renegotiation supported="1" secure="0" />
      <compression supported="1" />
      <fallback supported="0" />
      <heartbleed sslversion="TLSv1.2" vulnerable="1" />
      <cipher status="accepted" sslversion="TLSv1.2" bits="112" cipher="DES-CBC3-SHA" strength="medium" />
      <cipher status="accepted" sslversion="TLSv1.2" bits="0" cipher="AECDH-NULL-SHA" strength="null" />
    </ssltest>`;
    expect(sslscanFindings(report)).to.deep.equal([
      'protocol SSL 3 is enabled',
      'insecure renegotiation is supported',
      'TLS compression is supported (CRIME)',
      'TLS_FALLBACK_SCSV is not supported',
      'TLSv1.2 is vulnerable to Heartbleed',
      'TLSv1.2 cipher DES-CBC3-SHA (112 bits) is rated medium',
      'TLSv1.2 cipher AECDH-NULL-SHA (0 bits) is rated null',
    ]);
  });

  it('refuses a report without a scan (sslscan could not connect)', () => {
    expect(() => sslscanFindings('<?xml version="1.0"?><document></document>')).to.throw("no <ssltest> in sslscan's report");
  });
});
