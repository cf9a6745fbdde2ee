import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { ProtocolSyntaxError } from '../../lib/protocol/reply-error.js';
import { decodeBase64Strict, encodeBase64 } from '../../lib/protocol/sasl/base64.js';
import { cramMd5Challenge, decodeCramMd5, verifyCramMd5 } from '../../lib/protocol/sasl/cram-md5.js';
import { decodePlain } from '../../lib/protocol/sasl/plain.js';

/** The error `fn` throws (fails when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

describe('protocol: SASL mechanisms', () => {
  describe('strict base64 (RFC 4648 §4)', () => {
    it('decodes padded and unpadded-length-4 input', () => {
      expect(decodeBase64Strict('YWxpY2U=').toString()).to.equal('alice');
      expect(decodeBase64Strict('').length).to.equal(0);
      expect(encodeBase64('alice')).to.equal('YWxpY2U=');
    });

    for (const bad of ['YWxpY2U', 'YWx pY2U=', 'YWxpY2U=\r\n', '*', 'YQ===']) {
      it(`refuses ${JSON.stringify(bad)} with "invalid base64"`, () => {
        const err = thrown(() => decodeBase64Strict(bad));
        expect(err).to.be.instanceOf(ProtocolSyntaxError);
        expect((err as Error).message).to.equal('invalid base64');
      });
    }
  });

  describe('PLAIN (RFC 4616 §2)', () => {
    it('splits authzid, authcid and password', () => {
      expect(decodePlain(b64('\0alice\0open sesame'))).to.deep.equal({ authzid: '', authcid: 'alice', password: 'open sesame' });
      expect(decodePlain(b64('admin\0alice\0pw'))).to.deep.equal({ authzid: 'admin', authcid: 'alice', password: 'pw' });
    });

    for (const [name, text] of [
      ['one NUL', 'alice\0pw'],
      ['three NULs', '\0alice\0pw\0extra'],
      ['an empty authcid', 'admin\0\0pw'],
      ['no NUL at all', 'alice'],
    ] as const) {
      it(`refuses a message with ${name} as "malformed PLAIN message"`, () => {
        const err = thrown(() => decodePlain(b64(text)));
        expect(err).to.be.instanceOf(ProtocolSyntaxError);
        expect((err as Error).message).to.equal('malformed PLAIN message');
      });
    }
  });

  describe('CRAM-MD5 (RFC 2195 §2)', () => {
    it('builds a unique msg-id-like challenge with our host name, base64 encoded', () => {
      const a = cramMd5Challenge('mx.test');
      const b = cramMd5Challenge('mx.test');
      expect(a.text).to.match(/^<[0-9a-f]{16}\.\d+@mx\.test>$/);
      expect(Buffer.from(a.base64, 'base64').toString()).to.equal(a.text);
      expect(a.text).to.not.equal(b.text);
    });

    it('decodes "user SP 32 hex digits"', () => {
      const digest = 'b913a602c7eda7a495b4e6e7334d3890';
      expect(decodeCramMd5(b64(`tim smith ${digest}`))).to.deep.equal({ username: 'tim smith', digest });
    });

    for (const [name, text] of [
      ['a digest with a 33rd hex digit', `alice ${'a'.repeat(33)}`],
      ['junk after the digest', `alice ${'a'.repeat(32)} `],
      ['an upper-case digest', `alice ${'A'.repeat(32)}`],
      ['no user', ` ${'a'.repeat(32)}`],
    ] as const) {
      it(`refuses ${name} as "malformed CRAM-MD5 response"`, () => {
        const err = thrown(() => decodeCramMd5(b64(text)));
        expect(err).to.be.instanceOf(ProtocolSyntaxError);
        expect((err as Error).message).to.equal('malformed CRAM-MD5 response');
      });
    }

    it('verifies the RFC 2195 example digest, and refuses a wrong or short one without throwing', () => {
      const challenge = '<1896.697170952@postoffice.reston.mci.net>';
      const digest = 'b913a602c7eda7a495b4e6e7334d3890'; // RFC 2195 §2, secret "tanstaaftanstaaf"
      expect(createHmac('md5', 'tanstaaftanstaaf').update(challenge).digest('hex')).to.equal(digest);
      expect(verifyCramMd5(challenge, 'tanstaaftanstaaf', digest)).to.equal(true);
      expect(verifyCramMd5(challenge, 'wrong secret', digest)).to.equal(false);
      expect(verifyCramMd5(challenge, 'tanstaaftanstaaf', digest.slice(0, 31))).to.equal(false);
      expect(verifyCramMd5(challenge, 'tanstaaftanstaaf', digest + '0')).to.equal(false);
    });
  });
});
