import { expect } from 'chai';
import { imapCapabilities } from '../../lib/imap/imap-capabilities.js';
import { IMAP_MAX_LITERAL_SIZE, resolveImapSettings } from '../../lib/imap/imap-options.js';

describe('imapCapabilities', () => {
  const base = { allowInsecureAuth: false, maxLiteralSize: 1000 };

  it('offers STARTTLS and LOGINDISABLED, and no AUTH=, before TLS', () => {
    const caps = imapCapabilities({ ...base, state: 'not-authenticated', isSecure: false });
    expect(caps[0]).to.equal('IMAP4rev1');
    expect(caps).to.include.members(['STARTTLS', 'LOGINDISABLED', 'LITERAL+', 'IDLE', 'UIDPLUS', 'MOVE', 'APPENDLIMIT=1000']);
    expect(caps.some((c) => c.startsWith('AUTH='))).to.equal(false);
  });

  it('offers AUTH=PLAIN and SASL-IR under TLS, without STARTTLS', () => {
    const caps = imapCapabilities({ ...base, state: 'not-authenticated', isSecure: true });
    expect(caps).to.include.members(['AUTH=PLAIN', 'SASL-IR']);
    expect(caps).not.to.include.members(['STARTTLS']);
    expect(caps).not.to.include('LOGINDISABLED');
  });

  it('offers both STARTTLS and AUTH=PLAIN in plaintext with allowInsecureAuth', () => {
    const caps = imapCapabilities({ ...base, allowInsecureAuth: true, state: 'not-authenticated', isSecure: false });
    expect(caps).to.include.members(['STARTTLS', 'AUTH=PLAIN']);
    expect(caps).not.to.include('LOGINDISABLED');
  });

  it('drops login-related capabilities after login', () => {
    const caps = imapCapabilities({ ...base, state: 'authenticated', isSecure: false });
    expect(caps.filter((c) => /^(STARTTLS|LOGINDISABLED|AUTH=|SASL-IR)/.test(c))).to.deep.equal([]);
  });

  it('does not advertise extensions the server does not implement', () => {
    const caps = imapCapabilities({ ...base, state: 'authenticated', isSecure: true });
    expect(caps).not.to.include.oneOf(['IMAP4rev2', 'OBJECTID', 'QUOTA']);
    expect(imapCapabilities({ ...base, state: 'authenticated', isSecure: true, isCompressed: true })).not.to.include('COMPRESS=DEFLATE');
    expect(caps).to.include.members(['CONDSTORE', 'QRESYNC', 'ESEARCH', 'LIST-EXTENDED', 'LIST-STATUS', 'SPECIAL-USE', 'UTF8=ACCEPT', 'SORT', 'NOTIFY']);
  });
});

describe('imapCapabilities: non-synchronizing literals', () => {
  it('advertises LITERAL+ by default and LITERAL- instead when literalPlus is false, never both (RFC 7888)', () => {
    const input = { allowInsecureAuth: false, maxLiteralSize: 1000, state: 'authenticated' as const, isSecure: true };
    expect(imapCapabilities(input).filter((c) => c.startsWith('LITERAL'))).to.deep.equal(['LITERAL+']);
    expect(imapCapabilities({ ...input, literalPlus: false }).filter((c) => c.startsWith('LITERAL'))).to.deep.equal(['LITERAL-']);
    expect(resolveImapSettings({}).literalPlus).to.equal(true);
  });
});

describe('resolveImapSettings', () => {
  it('applies the RFC-based defaults and the global allowInsecureAuth', () => {
    const s = resolveImapSettings({}, { allowInsecureAuth: true });
    expect(s.idleTimeoutMs).to.equal(30 * 60_000);
    expect(s.maxLiteralSize).to.equal(IMAP_MAX_LITERAL_SIZE);
    expect(s.allowInsecureAuth).to.equal(true);
    expect(resolveImapSettings({ idleTimeoutMs: 5 }).idleTimeoutMs).to.equal(5);
  });
});
