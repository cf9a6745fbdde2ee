import { expect } from 'chai';
import type { LineClient } from '../../support/line-client.js';
import { startImap, type ImapHarness } from '../imap-harness.js';

/** The client reads octets as latin1: what a UTF-8 text looks like there. */
const wire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('IMAP UTF8=ACCEPT (RFC 6855)', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    c = await h.loginAlice();
    await c.command('m CREATE "K&AOQ-ln"', /^m OK/);
  });
  afterEach(async () => {
    await c.close();
    await h.close();
  });

  it('uses modified UTF-7 names until ENABLE UTF8=ACCEPT, UTF-8 names after', async () => {
    expect(await c.command('a LIST "" K*', /^a /)).to.deep.equal(['* LIST (\\HasNoChildren) "/" "K&AOQ-ln"', 'a OK LIST completed']);
    expect(await c.command('b ENABLE UTF8=ACCEPT', /^b /)).to.deep.equal(['* ENABLED UTF8=ACCEPT', 'b OK ENABLE completed']);
    expect(await c.command('c LIST "" K*', /^c /)).to.deep.equal([wire('* LIST (\\HasNoChildren) "/" "Käln"'), 'c OK LIST completed']);
    await c.command('d CREATE "Café & Bar"', /^d OK/);
    expect(await c.command('e STATUS "Café & Bar" (MESSAGES)', /^e /)).to.deep.equal([wire('* STATUS "Café & Bar" (MESSAGES 0)'), 'e OK STATUS completed']);
    const raw = 'Subject: Grüße\r\n\r\nHallo\r\n';
    c.send(Buffer.from(`f APPEND "Café & Bar" UTF8 (~{${Buffer.byteLength(raw)}+}\r\n${raw})\r\n`, 'utf8'));
    expect((await c.expect(/^f /)).pop()).to.match(/^f OK \[APPENDUID \d+ 1\]/);
  });
});
