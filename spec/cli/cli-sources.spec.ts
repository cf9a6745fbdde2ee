/**
 * The `postern` command's options from the environment (`POSTERN_SMTP_PORT`) and a configuration file (`--config`):
 * how each source is read, which one wins, the exact refusals, and a real `postern` process configured without any
 * secret on its command line.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCliArgs } from '../../lib/cli/cli-args.js';
import { envName, optionsFromEnv, optionsFromFile } from '../../lib/cli/cli-sources.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';
import { type PosternProcess, runPostern, startPostern, usageMessage } from './cli-process.js';

const OPTIONS = { 'smtp-port': { type: 'string' }, user: { type: 'string', multiple: true }, 'auth-disabled': { type: 'boolean' }, help: { type: 'boolean' } } as const;

describe('cli: options from the environment and a configuration file', function () {
  this.timeout(30_000);
  let dir: string;
  const file = (name: string): string => path.join(dir, name);
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-cli-sources-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const usage = usageMessage;

  describe('reading each source', () => {
    it('names each variable POSTERN_ and the flag in upper case, - as _', () => {
      expect(envName('smtp-port')).to.equal('POSTERN_SMTP_PORT');
      expect(envName('max-connections-per-address-total')).to.equal('POSTERN_MAX_CONNECTIONS_PER_ADDRESS_TOTAL');
    });

    it('reads the environment: trimmed values, one value per line for a repeatable flag, booleans, empty as unset', () => {
      expect(optionsFromEnv(OPTIONS, { POSTERN_SMTP_PORT: ' 2525 ', POSTERN_USER: 'a:1@x\r\n\nb:2 3@y\n', POSTERN_AUTH_DISABLED: 'Yes' })).to.deep.equal({
        'smtp-port': '2525',
        user: ['a:1@x', 'b:2 3@y'],
        'auth-disabled': true,
      });
      expect(optionsFromEnv(OPTIONS, { POSTERN_SMTP_PORT: '', POSTERN_AUTH_DISABLED: 'off', POSTERN_HELP: '1', POSTERN_SMTP_PRT: '1' })).to.deep.equal({});
      expect(usage(() => optionsFromEnv(OPTIONS, { POSTERN_AUTH_DISABLED: 'maybe' }))).to.equal('POSTERN_AUTH_DISABLED: expected true or false, got "maybe"');
    });

    it('reads a file: name value or name = value, -- allowed, comments and blank lines skipped, spaces kept inside a value', () => {
      const text = '# Postern\n\nsmtp-port 2525\n--user = alice:pass word@example.com\nuser bob:x=y@example.com\r\nauth-disabled\n';
      expect(optionsFromFile(OPTIONS, text, 'f')).to.deep.equal({ 'smtp-port': '2525', user: ['alice:pass word@example.com', 'bob:x=y@example.com'], 'auth-disabled': true });
      expect(optionsFromFile(OPTIONS, 'auth-disabled = true\nauth-disabled false\n', 'f')).to.deep.equal({});
      expect(optionsFromFile(OPTIONS, '\uFEFFsmtp-port 25\r\n', 'f'), 'a UTF-8 byte-order mark').to.deep.equal({ 'smtp-port': '25' });
    });

    it('takes every boolean word in either source, any case, spaces around it: true/yes/on/1 and false/no/off/0', () => {
      for (const word of ['true', 'yes', 'on', '1', ' ON ', 'Yes\t']) {
        expect(optionsFromEnv(OPTIONS, { POSTERN_AUTH_DISABLED: word }), `env ${JSON.stringify(word)}`).to.deep.equal({ 'auth-disabled': true });
        expect(optionsFromFile(OPTIONS, `auth-disabled ${word}`, 'f'), `file ${JSON.stringify(word)}`).to.deep.equal({ 'auth-disabled': true });
      }
      for (const word of ['false', 'no', 'off', '0', ' NO ', 'False\t']) {
        expect(optionsFromEnv(OPTIONS, { POSTERN_AUTH_DISABLED: word }), `env ${JSON.stringify(word)}`).to.deep.equal({});
        expect(optionsFromFile(OPTIONS, `auth-disabled\nauth-disabled ${word}`, 'f'), `file ${JSON.stringify(word)}`).to.deep.equal({});
      }
    });

    it('reads the environment: a variable of spaces is unset; LF alone separates values; each value is trimmed', () => {
      expect(optionsFromEnv(OPTIONS, { POSTERN_SMTP_PORT: '   ', POSTERN_AUTH_DISABLED: ' \t ', POSTERN_USER: ' \n ' })).to.deep.equal({});
      expect(optionsFromEnv(OPTIONS, { POSTERN_USER: ' a:1@x \n\tb:2@y ' })).to.deep.equal({ user: ['a:1@x', 'b:2@y'] });
    });

    it('reads a file: indented lines and comments, name=value with no spaces, several spaces before =', () => {
      const text = '  # indented comment\n\t smtp-port=2525  \n  user  =  alice:1@example.com\n user   bob:2@example.com\n';
      expect(optionsFromFile(OPTIONS, text, 'f')).to.deep.equal({ 'smtp-port': '2525', user: ['alice:1@example.com', 'bob:2@example.com'] });
      expect(optionsFromFile(OPTIONS, 'user =alice:1@example.com', 'f')).to.deep.equal({ user: ['alice:1@example.com'] });
    });

    it('refuses a line with a bare CR inside (a file with old Mac line ends) instead of reading half of it', () => {
      expect(usage(() => optionsFromFile(OPTIONS, 'smtp-port 2525\ruser a:1@x', 'f'))).to.equal('--config f: line 1: unknown option "smtp-port 2525\ruser a:1@x"');
    });

    const refusals: Array<[string, string]> = [
      ['smtp-prot 25', '--config f: line 1: unknown option "smtp-prot"'],
      ['\n# ok\nhelp', '--config f: line 3: unknown option "help"'],
      ['config other.conf', '--config f: line 1: unknown option "config"'],
      ['smtp-port', '--config f: line 1: smtp-port needs a value'],
      ['user =  ', '--config f: line 1: user needs a value'],
      ['smtp-port 25\nsmtp-port 26', '--config f: line 2: smtp-port is given twice (it takes one value)'],
      ['auth-disabled maybe', '--config f: line 1: auth-disabled takes true or false, got "maybe"'],
      ['"smtp-port" 25', '--config f: line 1: unknown option ""smtp-port" 25"'],
    ];
    for (const [text, message] of refusals) {
      it(`refuses ${JSON.stringify(text)} with "${message}"`, () => {
        expect(usage(() => optionsFromFile(OPTIONS, text, 'f'))).to.equal(message);
      });
    }
  });

  describe('parseCliArgs', () => {
    it('takes the command line first, then the environment, then the file; a repeatable flag from one source only', async () => {
      await writeFile(file('a.conf'), 'smtp-port 2001\npop3-port 2002\nimap-port 2003\nuser file:1@example.com\nlog-level debug\n');
      const env = { POSTERN_POP3_PORT: '3002', POSTERN_IMAP_PORT: '3003', POSTERN_USER: 'env:1@example.com', POSTERN_CONFIG: file('a.conf') };
      const { config } = parseCliArgs(['--imap-port', '4003'], env);
      expect(config.ports).to.include({ smtp: 2001, pop3: 3002, imap: 4003 });
      expect(config.users!.map((u) => u.username)).to.deep.equal(['env']);
      expect(config.log!.level).to.equal('debug');
      expect(parseCliArgs(['--user', 'arg:1@example.com', '--config', file('a.conf')], env).config.users!.map((u) => u.username)).to.deep.equal(['arg']);
      expect(parseCliArgs(['--config', file('a.conf')], {}).config.users!.map((u) => u.username)).to.deep.equal(['file']);
    });

    it('takes POSTERN_CONFIG trimmed, and one of spaces as no file', async () => {
      await writeFile(file('b.conf'), 'smtp-port 2011\n');
      expect(parseCliArgs([], { POSTERN_CONFIG: `  ${file('b.conf')}\n` }).config.ports!.smtp).to.equal(2011);
      expect(parseCliArgs([], { POSTERN_CONFIG: '   ', POSTERN_SMTP_PORT: '2012' }).config.ports!.smtp).to.equal(2012);
    });

    it('reads nothing from the environment unless given one (the command passes process.env)', () => {
      expect(parseCliArgs([], { POSTERN_SMTP_PORT: '2999' }).config.ports!.smtp).to.equal(2999);
      expect(parseCliArgs([]).config.ports!.smtp).to.equal(undefined);
    });

    it('says where a refused value was set: the variable, or the file and line', async () => {
      await writeFile(file('bad-level.conf'), '# levels\nsmtp-port 2525\nlog-level loud\n');
      const expected = '--log-level: expected error, warn, info or debug, got "loud"';
      expect(usage(() => parseCliArgs(['--log-level', 'loud']))).to.equal(expected);
      expect(usage(() => parseCliArgs([], { POSTERN_LOG_LEVEL: 'loud' }))).to.equal(`${expected} (set by POSTERN_LOG_LEVEL)`);
      expect(usage(() => parseCliArgs(['--config', file('bad-level.conf')]))).to.equal(`${expected} (set by --config ${file('bad-level.conf')} line 3)`);
    });

    it("checks a value from the file or the environment as it checks the command line's", async () => {
      await writeFile(file('bad-port.conf'), 'smtp-port 99999\n');
      expect(usage(() => parseCliArgs(['--config', file('bad-port.conf')]))).to.equal(`${usage(() => parseCliArgs(['--smtp-port', '99999']))} (set by --config ${file('bad-port.conf')} line 1)`);
      expect(usage(() => parseCliArgs([], { POSTERN_STORE: 'mysql://x' }))).to.match(/^--store: expected memory, maildir:PATH or postgres:.* \(set by POSTERN_STORE\)$/);
      expect(usage(() => parseCliArgs(['--config', file('missing.conf')]))).to.equal(`--config: cannot read ${file('missing.conf')} (ENOENT)`);
    });
  });

  describe('the postern command', () => {
    const running: PosternProcess[] = [];
    const clients: LineClient[] = [];
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
    });

    it('serves with its users and TLS files from a configuration file and its ports from the environment: no secret in its arguments', async () => {
      const certs = await testCertificates();
      await writeFile(file('cert.pem'), certs.server.cert);
      await writeFile(file('key.pem'), certs.server.key);
      await writeFile(
        file('postern.conf'),
        ['# a test server', `cert ${file('cert.pem')}`, `key = ${file('key.pem')}`, 'user alice:correct horse@example.com', 'only smtps,imaps', 'log-level warn', ''].join('\n'),
      );
      const args = ['--config', file('postern.conf')];
      const p = startPostern(args, { POSTERN_SMTPS_PORT: '0', POSTERN_IMAPS_PORT: '0' });
      running.push(p);
      await p.ready(2);
      expect(Object.keys(p.ports).sort()).to.deep.equal(['imaps', 'smtps']);
      expect(args.join(' ')).not.to.contain('horse');
      const imap = await LineClient.connect(p.ports.imaps!, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
      clients.push(imap);
      await imap.expect(/^\* OK /);
      expect((await imap.command('a LOGIN alice "correct horse"', /^a /)).at(-1)).to.match(/^a OK /);
    });

    it('exits 2 with one line naming the file and line of a bad option', async () => {
      await writeFile(file('typo.conf'), '# ok\nsmtp-prot 25\n');
      const r = await runPostern(['--config', file('typo.conf')]);
      expect(r.code).to.equal(2);
      expect(r.stderr.trim()).to.equal(`postern: error: --config ${file('typo.conf')}: line 2: unknown option "smtp-prot" (see postern --help)`);
    });

    it('exits 2 with one line for a bad boolean in the environment', async () => {
      const r = await runPostern(['--only', 'smtp', '--smtp-port', '0'], 15_000, { POSTERN_AUTH_DISABLED: 'maybe' });
      expect(r.code).to.equal(2);
      expect(r.stderr.trim()).to.equal('postern: error: POSTERN_AUTH_DISABLED: expected true or false, got "maybe" (see postern --help)');
    });
  });
});
