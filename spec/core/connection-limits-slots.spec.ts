/**
 * ConnectionLimits' slot accounting and listenerLimits' validation and defaults, checked directly (issue 16: the
 * socket specs in fair-limits.spec.ts reach these only through whole sessions, and never a bad value).
 */
import { expect } from 'chai';
import {
  COMMAND_TIMEOUT_MS,
  ConnectionLimits,
  listenerLimits,
  MAX_CONNECTIONS_PER_ADDRESS,
  PRE_AUTH_TIMEOUT_MS,
} from '../../lib/core/connection-limits.js';

function slot(l: ConnectionLimits, address: string): () => void {
  const r = l.acquire(address);
  if (!('release' in r)) throw new Error(`refused: ${r.refused}`);
  return r.release;
}

describe('core: ConnectionLimits slots', () => {
  it('refuses the address past its total and everyone past the process total, naming the cap and its value', () => {
    const l = new ConnectionLimits({ maxConnectionsPerAddressTotal: 2, maxConnectionsTotal: 3 });
    slot(l, '10.0.0.1');
    slot(l, '10.0.0.1');
    expect(l.acquire('10.0.0.1')).to.deep.equal({ refused: 'address-total-limit', max: 2 });
    slot(l, '10.0.0.2');
    expect(l.acquire('10.0.0.3')).to.deep.equal({ refused: 'total-limit', max: 3 });
    expect(l.size).to.equal(3);
  });

  it('gives a slot back once however often release is called, and forgets an address with none left', () => {
    const l = new ConnectionLimits({ maxConnectionsPerAddressTotal: 1, maxConnectionsTotal: 0 });
    const a = slot(l, '10.0.0.1');
    const b = slot(l, '10.0.0.2');
    a();
    a();
    expect(l.size).to.equal(1);
    expect(l.countOf('10.0.0.1')).to.equal(0);
    expect(l.countOf('10.0.0.2')).to.equal(1);
    slot(l, '10.0.0.1'); // the freed slot is usable again
    b();
    expect([l.size, l.countOf('10.0.0.1'), l.countOf('10.0.0.2')]).to.deep.equal([1, 1, 0]);
  });

  it('keeps the count of an address that still holds slots after one is released', () => {
    const l = new ConnectionLimits({ maxConnectionsPerAddressTotal: 3 });
    const first = slot(l, '10.0.0.1');
    slot(l, '10.0.0.1');
    slot(l, '10.0.0.1');
    first();
    expect(l.countOf('10.0.0.1')).to.equal(2);
    slot(l, '10.0.0.1');
    expect(l.acquire('10.0.0.1')).to.deep.equal({ refused: 'address-total-limit', max: 3 });
  });

  it('has no cap when both are 0', () => {
    const l = new ConnectionLimits({ maxConnectionsPerAddressTotal: 0, maxConnectionsTotal: 0 });
    for (let i = 0; i < 400; i++) slot(l, '10.0.0.1');
    expect(l.countOf('10.0.0.1')).to.equal(400);
  });

  it('defaults to 300 per address and 6000 in total', () => {
    const l = new ConnectionLimits();
    for (let i = 0; i < 300; i++) slot(l, '10.0.0.1');
    expect(l.acquire('10.0.0.1')).to.deep.equal({ refused: 'address-total-limit', max: 300 });
    for (let i = 0; i < 5700; i++) slot(l, `10.1.${i >> 8}.${i & 255}`);
    expect(l.acquire('10.2.0.1')).to.deep.equal({ refused: 'total-limit', max: 6000 });
  });
});

describe('core: listenerLimits', () => {
  it('fills in the defaults and passes maxConnections through', () => {
    expect(listenerLimits()).to.deep.equal({
      maxConnections: undefined,
      maxConnectionsPerAddress: MAX_CONNECTIONS_PER_ADDRESS,
      preAuthTimeoutMs: PRE_AUTH_TIMEOUT_MS,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    expect(listenerLimits({ maxConnections: 5, maxConnectionsPerAddress: 0, preAuthTimeoutMs: 7, commandTimeoutMs: 9 })).to.deep.equal({
      maxConnections: 5,
      maxConnectionsPerAddress: 0,
      preAuthTimeoutMs: 7,
      commandTimeoutMs: 9,
    });
  });

  it('refuses a negative or fractional value, naming the field', () => {
    expect(() => listenerLimits({ preAuthTimeoutMs: -1 })).to.throw(RangeError, 'limits.preAuthTimeoutMs must be a non-negative integer');
    expect(() => listenerLimits({ maxConnectionsTotal: 1.5 })).to.throw(RangeError, 'limits.maxConnectionsTotal must be a non-negative integer');
    expect(listenerLimits({ maxConnectionsPerAddress: 0, commandTimeoutMs: undefined }).commandTimeoutMs).to.equal(COMMAND_TIMEOUT_MS);
  });
});
