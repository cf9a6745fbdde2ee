import { expect } from 'chai';
import { deliveryEnvelope } from '../../lib/smtp/mail-store-smtp-backend.js';
import { envelope } from './envelopes.js';

describe('smtp: the envelope record a delivery keeps (deliveryEnvelope)', () => {
  const at = new Date('2026-12-01T10:00:00.000Z');

  it('records the transaction and the session facts in one object per delivery', () => {
    const plain = deliveryEnvelope(envelope(['bob@example.test']), at);
    expect(plain).to.deep.equal({
      mailFrom: 'app@example.test',
      rcptTo: ['bob@example.test'],
      helo: 'client.test',
      clientAddress: '127.0.0.1',
      clientPort: 40000,
      protocol: 'smtp',
      receivedAt: '2026-12-01T10:00:00.000Z',
    });
    const secure = deliveryEnvelope(envelope(['bob@example.test'], true), at);
    expect(secure.tls).to.deep.equal({ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
  });

  it('shares one frozen recipient list between records with the same single recipient (no array kept per message)', () => {
    const first = deliveryEnvelope(envelope(['bob@example.test']), at);
    const second = deliveryEnvelope(envelope([['bob', '@example.test'].join('')]), at);
    expect(second.rcptTo).to.equal(first.rcptTo);
    expect(Object.isFrozen(first.rcptTo)).to.equal(true);
    expect(second.mailFrom).to.equal(first.mailFrom);
    const other = deliveryEnvelope(envelope(['carol@example.test']), at);
    expect(other.rcptTo).to.deep.equal(['carol@example.test']);
    expect(other.rcptTo).not.to.equal(first.rcptTo);
  });

  it('gives several recipients a list of their own, in the order given, not changed by the session later', () => {
    const rcpts = ['bob@example.test', 'carol@example.test', 'bob@example.test'];
    const record = deliveryEnvelope(envelope(rcpts), at);
    rcpts.push('dave@example.test');
    expect(record.rcptTo).to.deep.equal(['bob@example.test', 'carol@example.test', 'bob@example.test']);
    expect(deliveryEnvelope(envelope(rcpts.slice(0, 3)), at).rcptTo).not.to.equal(record.rcptTo);
  });
});
