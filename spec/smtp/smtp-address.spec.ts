/**
 * Issue 15: `parsePath` answers the common `<local@domain>` shape with one regex; every other shape takes the full
 * parse. Both must give the same address, parameters and refusals.
 */
import { expect } from 'chai';
import { parsePath } from '../../lib/smtp/smtp-address.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';

function outcome(args: string, kind: 'FROM' | 'TO'): string {
  try {
    const p = parsePath(args, kind);
    return `${p.address} ${JSON.stringify([...p.params])}`;
  } catch (err) {
    if (!(err instanceof SmtpReplyError)) throw err;
    return `${err.code} ${err.enhanced} ${err.message}`;
  }
}

describe('smtp: MAIL/RCPT path parsing', () => {
  it('parses plain addresses in any case of FROM:/TO:, with spaces after the colon', () => {
    expect(outcome('FROM:<bob@example.com>', 'FROM')).to.equal('bob@example.com []');
    expect(outcome('from:  <Bob.Smith+tag@Sub-1.example.com>', 'FROM')).to.equal('Bob.Smith+tag@Sub-1.example.com []');
    expect(outcome("To:<a!#$%&'*/=?^_`{|}~-z@x>", 'TO')).to.equal("a!#$%&'*/=?^_`{|}~-z@x []");
    expect(parsePath('TO:<alice@example.com>', 'TO').params.size).to.equal(0);
  });

  it('refuses what the full parse refuses, with the same replies', () => {
    expect(outcome('TO:<bob@example.com>', 'FROM')).to.equal('501 5.5.4 Syntax: MAIL FROM:<address>');
    expect(outcome('FROM:<bob@example.com>', 'TO')).to.equal('501 5.5.4 Syntax: RCPT TO:<address>');
    expect(outcome('FROM:<bob.@example.com>', 'FROM')).to.equal('501 5.1.7 Bad local part syntax');
    expect(outcome('TO:<bob@-example.com>', 'TO')).to.equal('501 5.1.3 Bad domain syntax');
    expect(outcome('TO:<bob@example-.com>', 'TO')).to.equal('501 5.1.3 Bad domain syntax');
    expect(outcome('TO:<bob@example..com>', 'TO')).to.equal('501 5.1.3 Bad domain syntax');
    expect(outcome(`TO:<${'a'.repeat(65)}@example.com>`, 'TO')).to.equal('501 5.1.3 Local part too long');
    expect(outcome(`TO:<${'a'.repeat(64)}@example.com>`, 'TO')).to.equal(`${'a'.repeat(64)}@example.com []`);
    expect(outcome(`TO:<a@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(66)}>`, 'TO')).to.equal('501 5.1.3 Domain too long');
  });

  it('leaves parameters, routes, quoted local parts, literals and the null path to the full parse', () => {
    expect(outcome('FROM:<bob@example.com> SIZE=100 body=8bitmime', 'FROM')).to.equal('bob@example.com [["SIZE","100"],["BODY","8bitmime"]]');
    expect(outcome('TO:<@relay.example:alice@example.com>', 'TO')).to.equal('alice@example.com []');
    expect(outcome('TO:<"a b"@example.com>', 'TO')).to.equal('"a b"@example.com []');
    expect(outcome('TO:<alice@[127.0.0.1]>', 'TO')).to.equal('alice@[127.0.0.1] []');
    expect(outcome('FROM:<>', 'FROM')).to.equal(' []');
    expect(outcome('TO:<Postmaster>', 'TO')).to.equal('Postmaster []');
    expect(outcome('TO:<bob@example.com>x', 'TO')).to.equal('501 5.1.3 Bad address syntax');
  });
});
