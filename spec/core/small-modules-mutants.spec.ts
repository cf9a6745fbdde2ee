/**
 * The small core modules whose behaviour the handshake specs only reach in passing (issue 16, mutation testing):
 * the ticket-key schedule (`ticket-keys.ts`), the handshake error type (`tls-errors.ts`) and the client settings
 * (`client-security.ts`). Timing is checked by event order against a reference schedule, never by the clock.
 */
import { expect } from 'chai';
import { ClientSecurity } from '../../lib/core/client-security.js';
import { DEFAULT_PROTOCOLS, SslProtocols } from '../../lib/core/ssl-protocols.js';
import { assertTicketKeys, generateTicketKeys, TICKET_KEY_BYTES, TicketKeyRotation } from '../../lib/core/ticket-keys.js';
import { TlsHandshakeError } from '../../lib/core/tls-errors.js';

describe('core: small modules (ticket keys, handshake errors, client settings)', () => {
  describe('TicketKeyRotation', () => {
    const running: TicketKeyRotation[] = [];
    afterEach(() => {
      for (const r of running.splice(0)) r.stop();
    });

    /** A rotation that counts its announcements; `after(n)` resolves at its n-th. */
    function counted(intervalMs: number): { rotation: TicketKeyRotation; announced: Buffer[]; after: (n: number) => Promise<void> } {
      const announced: Buffer[] = [];
      const waiters: Array<[number, () => void]> = [];
      const rotation = new TicketKeyRotation(intervalMs, (keys) => {
        announced.push(keys);
        for (const [n, resolve] of waiters) if (announced.length >= n) resolve();
      });
      running.push(rotation);
      return { rotation, announced, after: (n) => new Promise((resolve) => (announced.length >= n ? resolve() : waiters.push([n, resolve]))) };
    }

    it('announces a fresh 48-byte set on each tick, which becomes the current one', async () => {
      const a = counted(5);
      const first = a.rotation.current;
      a.rotation.start();
      await a.after(2);
      expect(a.announced.map((k) => k.length)).to.deep.equal([TICKET_KEY_BYTES, TICKET_KEY_BYTES]);
      expect(a.announced[0].equals(first)).to.equal(false);
      expect(a.announced[1].equals(a.announced[0])).to.equal(false);
      expect(a.rotation.current).to.equal(a.announced[a.announced.length - 1]);
    });

    it('runs no schedule at interval 0 and one schedule however often start() is called, until stop()', async () => {
      const off = counted(0);
      const twice = counted(10);
      const reference = counted(10);
      off.rotation.start();
      twice.rotation.start();
      twice.rotation.start();
      reference.rotation.start();
      // Timers of one duration fire in the order they were made: `twice` ticks just before `reference` every time.
      await reference.after(4);
      expect(off.announced).to.have.length(0);
      expect(twice.announced).to.have.length(4);
      twice.rotation.stop();
      twice.rotation.stop();
      await reference.after(6);
      expect(twice.announced).to.have.length(4);
      twice.rotation.start();
      await twice.after(5);
    });

    it('takes the initial set it is given, and refuses one that is not 48 bytes', () => {
      const keys = generateTicketKeys();
      expect(new TicketKeyRotation(0, () => undefined, keys).current).to.equal(keys);
      expect(() => new TicketKeyRotation(0, () => undefined, Buffer.alloc(32))).to.throw(RangeError, 'session ticket keys must be 48 bytes');
    });

    it('assertTicketKeys wants a Buffer of exactly 48 bytes', () => {
      expect(() => assertTicketKeys(Buffer.alloc(48))).to.not.throw();
      for (const bad of [Buffer.alloc(47), Buffer.alloc(49), new Uint8Array(48) as Buffer, 'x'.repeat(48) as unknown as Buffer]) {
        expect(() => assertTicketKeys(bad)).to.throw(RangeError, 'session ticket keys must be 48 bytes');
      }
    });
  });

  describe('TlsHandshakeError', () => {
    it('is an Error named TlsHandshakeError with its reason, message and optional code', () => {
      const plain = new TlsHandshakeError('timeout', 'too slow');
      expect(plain).to.be.instanceOf(Error);
      expect([plain.name, plain.reason, plain.message, plain.code]).to.deep.equal(['TlsHandshakeError', 'timeout', 'too slow', undefined]);
      expect(String(new TlsHandshakeError('protocol', 'bad', 'ERR_SSL_X'))).to.equal('TlsHandshakeError: bad');
      expect(new TlsHandshakeError('protocol', 'bad', 'ERR_SSL_X').code).to.equal('ERR_SSL_X');
    });
  });

  describe('ClientSecurity', () => {
    it('defaults to TLS 1.2 and 1.3 and keeps its own copy of the options', () => {
      expect(new ClientSecurity().protocols).to.equal(DEFAULT_PROTOCOLS);
      const options = { protocols: SslProtocols.Tls13, targetHost: 'a.example' };
      const s = new ClientSecurity(options);
      options.targetHost = 'b.example';
      expect([s.protocols, s.options.targetHost]).to.deep.equal([SslProtocols.Tls13, 'a.example']);
    });
  });
});
