import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { emailIdOfContent, emailIdOfHash, emailIdOfName, mailboxIdOf } from '../../lib/backends/shared/object-ids.js';

const sha256 = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest();
/** RFC 8474 §7 objectid. */
const OBJECTID = /^[A-Za-z0-9_-]{1,255}$/;

// Written against the mutants StrykerJS left alive in object-ids.ts (README, "Scores (Stryker").
describe('shared object ids (RFC 8474): the exact form of every id', () => {
  it('makes an EMAILID of M plus 24 hex digits of the SHA-256 of the octets, of a given hash, or of a file name', () => {
    const raw = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    const hex = sha256(raw).toString('hex').slice(0, 24);
    expect(emailIdOfContent(raw)).to.equal(`M${hex}`);
    expect(emailIdOfHash(sha256(raw))).to.equal(`M${hex}`);
    const name = '1700000000.M1P2Q3Rabcd.host,S=5';
    expect(emailIdOfName(name)).to.equal(`M${sha256(name).toString('hex').slice(0, 24)}`);
    for (const id of [emailIdOfContent(raw), emailIdOfName(name)]) expect(id).to.match(OBJECTID);
  });

  it('makes a MAILBOXID of F plus a number, or of F plus 24 hex digits of the SHA-256 of a string', () => {
    expect(mailboxIdOf(1712345678)).to.equal('F1712345678');
    const unique = '0b0c5a9e-2f7e-4bb4-8b0e-6a8a3c1f0d2e';
    expect(mailboxIdOf(unique)).to.equal(`F${sha256(unique).toString('hex').slice(0, 24)}`);
    expect(mailboxIdOf(unique)).to.match(OBJECTID);
  });
});
