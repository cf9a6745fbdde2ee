import { expect } from 'chai';
import { pop3Capabilities } from '../../lib/pop3/pop3-capabilities.js';
import { WIRE_CHUNK_OCTETS, wireChunks, wireSize } from '../../lib/pop3/pop3-message.js';

const wire = (raw: string, lines?: number): string => Buffer.concat([...wireChunks(Buffer.from(raw, 'latin1'), lines)]).toString('latin1');

describe('pop3: wire form of messages', () => {
  it('keeps CRLF messages as they are and counts their octets', () => {
    const raw = 'Subject: x\r\n\r\nbody\r\n';
    expect(wire(raw)).to.equal(raw);
    expect(wireSize(Buffer.from(raw))).to.equal(raw.length);
  });

  it('byte-stuffs lines that begin with a dot, without counting the stuffing', () => {
    const raw = 'A: b\r\n\r\n.\r\n..x\r\n.y\r\nz.\r\n';
    expect(wire(raw)).to.equal('A: b\r\n\r\n..\r\n...x\r\n..y\r\nz.\r\n');
    expect(wireSize(Buffer.from(raw))).to.equal(raw.length);
  });

  it('turns bare LF into CRLF and terminates a last line without line end, counting the result', () => {
    const raw = 'A: b\n\nline1\nline2\r\nlast';
    const sent = 'A: b\r\n\r\nline1\r\nline2\r\nlast\r\n';
    expect(wire(raw)).to.equal(sent);
    expect(wireSize(Buffer.from(raw))).to.equal(sent.length);
  });

  it('leaves a bare CR inside a line alone', () => {
    expect(wire('a\rb\r\n')).to.equal('a\rb\r\n');
  });

  it('TOP: header, blank line and at most n body lines', () => {
    const raw = 'A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n';
    expect(wire(raw, 0)).to.equal('A: 1\r\nB: 2\r\n\r\n');
    expect(wire(raw, 2)).to.equal('A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n');
    expect(wire(raw, 99)).to.equal('A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n');
  });

  it('TOP of a message without a body still ends the header with the blank line (RFC 1939 §7); RETR sends it as stored', () => {
    expect(wire('A: 1\r\nB: 2\r\n', 0)).to.equal('A: 1\r\nB: 2\r\n\r\n');
    expect(wire('A: 1\r\nB: 2', 1)).to.equal('A: 1\r\nB: 2\r\n\r\n');
    expect(wire('A: 1\r\nB: 2\r\n')).to.equal('A: 1\r\nB: 2\r\n');
  });

  it('sends a message already in wire form as slices of itself, and still converts when one line needs it', () => {
    const raw = Buffer.from('A: 1\r\n\r\nbody\r\nz.\r\n');
    const [only, ...more] = [...wireChunks(raw)];
    expect(more).to.have.length(0);
    expect(only!.buffer).to.equal(raw.buffer); // not copied
    expect(wire('.a\r\nb\r\n')).to.equal('..a\r\nb\r\n');
    expect(wire('a\r\nb\n')).to.equal('a\r\nb\r\n');
    expect(wire('\nA\r\n')).to.equal('\r\nA\r\n');
    expect(wire('a\r\n.b\r\n')).to.equal('a\r\n..b\r\n');
    expect(wire('a\r\nb')).to.equal('a\r\nb\r\n');
  });

  it('yields bounded chunks for a large message', () => {
    const raw = Buffer.from('x'.repeat(1000) + '\r\n').toString().repeat(500);
    const chunks = [...wireChunks(Buffer.from(raw))];
    expect(chunks.length).to.be.greaterThan(5);
    for (const c of chunks) expect(c.length).to.be.at.most(WIRE_CHUNK_OCTETS + 1003);
    expect(Buffer.concat(chunks).toString()).to.equal(raw);
  });
});

describe('pop3: capabilities', () => {
  const base = { allowInsecureAuth: false, saslMechanisms: ['PLAIN', 'LOGIN'] } as const;

  it('offers STLS and hides logins before TLS', () => {
    const caps = pop3Capabilities({ ...base, state: 'authorization', isSecure: false });
    expect(caps).to.include('STLS').and.not.include('USER');
    expect(caps.some((c) => c.startsWith('SASL'))).to.equal(false);
  });

  it('offers USER and SASL, never STLS, under TLS', () => {
    const caps = pop3Capabilities({ ...base, state: 'authorization', isSecure: true });
    expect(caps).to.include.members(['USER', 'SASL PLAIN LOGIN', 'EXPIRE NEVER']).and.not.include('STLS');
  });

  it('offers USER in plaintext with allowInsecureAuth, and keeps it in TRANSACTION (RFC 2449 §5)', () => {
    expect(pop3Capabilities({ ...base, allowInsecureAuth: true, state: 'authorization', isSecure: false })).to.include.members(['STLS', 'USER']);
    expect(pop3Capabilities({ ...base, allowInsecureAuth: true, state: 'transaction', isSecure: false })).to.include('USER').and.not.include('STLS');
  });
});
