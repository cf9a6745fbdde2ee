/**
 * Reads sslscan's XML report (`sslscan --xml=-`, Debian package `sslscan`, 2.0) for the TLS audit: every element that
 * describes something weaker than Postern's defaults promise becomes one finding, worded for the audit's output.
 */

/** The attributes of every `<name …/>` element in `xml`, in document order. */
function elements(xml: string, name: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of xml.matchAll(new RegExp(`<${name}\\s([^>]*?)/?>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

/** AEAD suites: AES-GCM, ChaCha20-Poly1305, AES-CCM (TLS 1.3's are all AEAD). */
const AEAD = /GCM|CHACHA20|CCM/;

/** Cipher strengths sslscan rates as fine ("strong" for AEAD with forward secrecy under TLS 1.2, "acceptable" for TLS 1.3). */
const GOOD_STRENGTHS = new Set(['strong', 'acceptable']);

/**
 * The findings of one report: a protocol below TLS 1.2, client-initiated or insecure renegotiation, TLS compression,
 * no TLS_FALLBACK_SCSV, Heartbleed, a cipher sslscan does not rate strong/acceptable, under 128 bits or not AEAD, a
 * key-exchange group under 128 bits or finite-field, an expired certificate. Empty when the report shows none of them.
 * @throws Error when `xml` holds no `<ssltest>` (sslscan could not connect or the STARTTLS dialogue failed).
 */
export function sslscanFindings(xml: string): string[] {
  if (!/<ssltest\s/.test(xml)) throw new Error(`no <ssltest> in sslscan's report: ${xml.slice(0, 200)}`);
  const findings: string[] = [];
  for (const p of elements(xml, 'protocol')) {
    const modern = p.type === 'tls' && (p.version === '1.2' || p.version === '1.3');
    if (!modern && p.enabled === '1') findings.push(`protocol ${p.type?.toUpperCase()} ${p.version} is enabled`);
  }
  for (const r of elements(xml, 'renegotiation')) {
    if (r.supported === '1') findings.push(r.secure === '1' ? 'client-initiated renegotiation is supported' : 'insecure renegotiation is supported');
  }
  for (const c of elements(xml, 'compression')) if (c.supported === '1') findings.push('TLS compression is supported (CRIME)');
  for (const f of elements(xml, 'fallback')) if (f.supported === '0') findings.push('TLS_FALLBACK_SCSV is not supported');
  for (const h of elements(xml, 'heartbleed')) if (h.vulnerable === '1') findings.push(`${h.sslversion} is vulnerable to Heartbleed`);
  for (const c of elements(xml, 'cipher')) {
    if (!GOOD_STRENGTHS.has(c.strength ?? '') || Number(c.bits) < 128) findings.push(`${c.sslversion} cipher ${c.cipher} (${c.bits} bits) is rated ${c.strength}`);
    // sslscan rates CBC suites "acceptable"; Postern promises AEAD only (DEFAULT_TLS12_CIPHERS).
    else if (!AEAD.test(c.cipher ?? '')) findings.push(`${c.sslversion} cipher ${c.cipher} is not AEAD (CBC: Lucky13)`);
  }
  for (const g of elements(xml, 'group')) {
    if (Number(g.bits) < 128) findings.push(`${g.sslversion} key-exchange group ${g.name} gives ${g.bits} bits`);
    // Any finite-field group lets a client make each handshake far dearer to serve (DEFAULT_TLS_GROUPS).
    else if (/^ffdhe/.test(g.name ?? '')) findings.push(`${g.sslversion} key-exchange group ${g.name} is finite-field (costly to serve)`);
  }
  if (/<expired>true<\/expired>/.test(xml)) findings.push('the certificate has expired');
  return findings;
}
