import { expect } from 'chai';
import { dispatch, type CommandTable, type DispatchTarget, type GuardFailure } from '../../lib/protocol/command-table.js';
import { ProtocolSyntaxError, ReplyError } from '../../lib/protocol/reply-error.js';
import { RecordingLogger } from '../support/recording-logger.js';

type State = 'start' | 'ready';

/** A session as `dispatch` sees it, recording what it was asked to do. */
class Target implements DispatchTarget<State> {
  state: State = 'ready';
  isSecure = false;
  isAuthenticated = false;
  allowsInsecureAuth = false;
  readonly log = new RecordingLogger();
  readonly events: string[] = [];
  refuse(failure: GuardFailure, verb: string, detail?: string): void {
    this.events.push(`refuse ${failure} ${verb}${detail ? ` (${detail})` : ''}`);
  }
  sendReplyError(err: ReplyError): void {
    this.events.push(`reply ${err.message}`);
  }
  countError(): boolean {
    this.events.push('count');
    return true;
  }
  clearErrors(): void {
    this.events.push('clear');
  }
  beforeCommand?: (verb: string, args: string) => boolean | Promise<boolean>;
  observeCommand?: (verb: string, seconds: number) => void;
  refuseHttpRequest?: (method: string) => void;
}

class TestReplyError extends ReplyError {}

const TABLE: CommandTable<State, Target> = {
  NOOP: { states: ['start', 'ready'], args: 'none', run: (s) => void s.events.push('ran NOOP') },
  ECHO: { states: ['ready'], args: 'required', run: (s, a) => void s.events.push(`ran ECHO ${a}`) },
  LIST: { states: ['ready'], args: 'optional', run: (s, a) => void s.events.push(`ran LIST ${a}`) },
  LOGIN: { states: ['ready'], args: 'required', needsTls: true, run: (s) => void s.events.push('ran LOGIN') },
  READ: { states: ['ready'], args: 'none', needsAuth: true, run: (s) => void s.events.push('ran READ') },
  SYNTAX: { states: ['ready'], args: 'optional', run: () => Promise.reject(new ProtocolSyntaxError('bad date')) },
  REFUSE: { states: ['ready'], args: 'none', run: () => Promise.reject(new TestReplyError('no such thing')) },
  BUG: { states: ['ready'], args: 'none', run: () => Promise.reject(new Error('secret internals')) },
  NULL: { states: ['ready'], args: 'none', run: () => Promise.reject(null) },
  // The same refusals thrown synchronously, by a handler that is not async.
  SYNC_SYNTAX: { states: ['ready'], args: 'none', run: () => throwIt(new ProtocolSyntaxError('bad date')) },
  SYNC_REFUSE: { states: ['ready'], args: 'none', run: () => throwIt(new TestReplyError('no such thing')) },
  SYNC_BUG: { states: ['ready'], args: 'none', run: () => throwIt(new Error('secret internals')) },
  LATER: { states: ['ready'], args: 'none', run: (s) => new Promise((resolve) => setTimeout(() => resolve(void s.events.push('ran LATER')), 5)) },
};

function throwIt(err: Error): never {
  throw err;
}

async function run(verb: string, args = '', setup: (t: Target) => void = () => undefined): Promise<Target> {
  const t = new Target();
  setup(t);
  await dispatch(TABLE, t, verb, args);
  return t;
}

describe('protocol: dispatch through the command table', () => {
  it('runs a command whose guards pass and clears the error count', async () => {
    expect((await run('ECHO', 'hi')).events).to.deep.equal(['ran ECHO hi', 'clear']);
    expect((await run('LIST')).events).to.deep.equal(['ran LIST ', 'clear']);
  });

  it('refuses client errors and counts each against the budget: unknown verb, wrong state, argument shape, syntax', async () => {
    expect((await run('FOO')).events).to.deep.equal(['refuse unknown FOO', 'count']);
    expect((await run('toString')).events).to.deep.equal(['refuse unknown toString', 'count']); // not an inherited key
    expect((await run('ECHO', 'x', (t) => (t.state = 'start'))).events).to.deep.equal(['refuse state ECHO', 'count']);
    expect((await run('NOOP', 'x')).events).to.deep.equal(['refuse syntax NOOP (no arguments allowed)', 'count']);
    expect((await run('ECHO')).events).to.deep.equal(['refuse syntax ECHO (argument required)', 'count']);
    expect((await run('SYNTAX')).events).to.deep.equal(['refuse syntax SYNTAX (bad date)', 'count']);
  });

  it('hands an unknown verb that is an HTTP method to refuseHttpRequest, without counting an error; without that hook it is unknown', async () => {
    const withHook = (t: Target): void => void (t.refuseHttpRequest = (method) => void t.events.push(`http ${method}`));
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']) {
      expect((await run(method, '/ HTTP/1.1', withHook)).events, method).to.deep.equal([`http ${method}`]);
    }
    expect((await run('GETX', '/ HTTP/1.1', withHook)).events).to.deep.equal(['refuse unknown GETX', 'count']);
    expect((await run('POST', '/ HTTP/1.1')).events).to.deep.equal(['refuse unknown POST', 'count']);
    // A protocol of your own that has a GET command runs it: only unknown verbs are looked at.
    const table: CommandTable<State, Target> = { ...TABLE, GET: { states: ['ready'], args: 'optional', run: (s, a) => void s.events.push(`ran GET ${a}`) } };
    const t = new Target();
    withHook(t);
    await dispatch(table, t, 'GET', 'key');
    expect(t.events).to.deep.equal(['ran GET key', 'clear']);
  });

  it('refuses needsTls in plaintext without counting an error, and runs it when secure or when insecure auth is allowed', async () => {
    expect((await run('LOGIN', 'a b')).events).to.deep.equal(['refuse tls LOGIN']);
    expect((await run('LOGIN', 'a b', (t) => (t.isSecure = true))).events).to.deep.equal(['ran LOGIN', 'clear']);
    expect((await run('LOGIN', 'a b', (t) => (t.allowsInsecureAuth = true))).events).to.deep.equal(['ran LOGIN', 'clear']);
  });

  it('refuses needsAuth before authentication without counting an error, and runs it after', async () => {
    expect((await run('READ')).events).to.deep.equal(['refuse auth READ']);
    expect((await run('READ', '', (t) => (t.isAuthenticated = true))).events).to.deep.equal(['ran READ', 'clear']);
  });

  it('checks the guards in order: state before arguments before TLS', async () => {
    expect((await run('LOGIN', '', (t) => (t.state = 'start'))).events).to.deep.equal(['refuse state LOGIN', 'count']);
    expect((await run('LOGIN', '')).events).to.deep.equal(['refuse syntax LOGIN (argument required)', 'count']);
  });

  it('lets beforeCommand stop a command whose guards passed, and runs it when beforeCommand says go', async () => {
    const stop = await run('ECHO', 'hi', (t) => (t.beforeCommand = async (verb, args) => (t.events.push(`before ${verb} ${args}`), true)));
    expect(stop.events).to.deep.equal(['before ECHO hi']);
    const go = await run('ECHO', 'hi', (t) => (t.beforeCommand = async () => false));
    expect(go.events).to.deep.equal(['ran ECHO hi', 'clear']);
    const guarded = await run('FOO', '', (t) => (t.beforeCommand = async () => (t.events.push('before'), false)));
    expect(guarded.events).to.deep.equal(['refuse unknown FOO', 'count']); // only after the guards
  });

  it('finishes a synchronous handler before it returns, with no promise; a pending handler gets its promise back', async () => {
    const t = new Target();
    expect(dispatch(TABLE, t, 'ECHO', 'now')).to.equal(undefined);
    expect(t.events).to.deep.equal(['ran ECHO now', 'clear']);
    t.beforeCommand = () => false; // no fault rule: still synchronous
    expect(dispatch(TABLE, t, 'NOOP', '')).to.equal(undefined);
    t.beforeCommand = () => (t.events.push('stopped'), true);
    expect(dispatch(TABLE, t, 'NOOP', '')).to.equal(undefined);
    expect(t.events).to.deep.equal(['ran ECHO now', 'clear', 'ran NOOP', 'clear', 'stopped']);
    t.beforeCommand = undefined;
    const pending = dispatch(TABLE, t, 'LATER', '');
    expect(pending).to.be.instanceOf(Promise);
    expect(t.events.slice(5)).to.deep.equal([]);
    await pending;
    expect(t.events.slice(5)).to.deep.equal(['ran LATER', 'clear']);
  });

  it('maps refusals a handler throws synchronously like rejected ones', async () => {
    expect((await run('SYNC_SYNTAX')).events).to.deep.equal(['refuse syntax SYNC_SYNTAX (bad date)', 'count']);
    expect((await run('SYNC_REFUSE')).events).to.deep.equal(['reply no such thing']);
    const bug = await run('SYNC_BUG');
    expect(bug.events).to.deep.equal(['refuse bug SYNC_BUG']);
    expect(bug.log.find('command failed').map((r) => r.meta.error)).to.deep.equal(['secret internals']);
  });

  it('reports every command it ran to observeCommand with its duration, synchronous, pending or refused', async () => {
    const seen: Array<[string, number]> = [];
    const observe = (t: Target): void => void (t.observeCommand = (verb, seconds) => seen.push([verb, seconds]));
    await run('ECHO', 'x', observe);
    await run('LATER', '', observe);
    await run('SYNC_REFUSE', '', observe);
    await run('REFUSE', '', observe);
    await run('FOO', '', observe); // refused by a guard: never ran
    expect(seen.map(([verb]) => verb)).to.deep.equal(['ECHO', 'LATER', 'SYNC_REFUSE', 'REFUSE']);
    for (const [, seconds] of seen) expect(seconds).to.be.within(0, 5);
    expect(seen[1]![1]).to.be.at.least(0.004); // LATER waited 5 ms: seconds, not milliseconds
  });

  it('starts a command\'s clock after a beforeCommand pause (a delay fault), not before it', async () => {
    const seen: number[] = [];
    const t = await run('ECHO', 'x', (target) => {
      target.observeCommand = (_verb, seconds) => void seen.push(seconds);
      target.beforeCommand = () => new Promise<boolean>((resolve) => setTimeout(resolve, 30, false));
    });
    expect(t.events).to.include('ran ECHO x');
    expect(seen).to.have.length(1);
    expect(seen[0]).to.be.below(0.02); // the 30 ms pause is the fault's, not the command's
  });

  it('sends a ReplyError as-is, without counting or clearing', async () => {
    expect((await run('REFUSE')).events).to.deep.equal(['reply no such thing']);
  });

  it('logs any other throw as our bug with verb, message and stack, replies generically and counts nothing', async () => {
    const t = await run('BUG');
    expect(t.events).to.deep.equal(['refuse bug BUG']); // no detail: the text never reaches the wire
    const [logged] = t.log.find('command failed');
    expect(logged.level).to.equal('error');
    expect(logged.meta).to.include({ verb: 'BUG', error: 'secret internals' });
    expect(logged.meta.stack).to.match(/^Error: secret internals\n\s+at /);
  });

  it('survives a handler that throws null', async () => {
    const t = await run('NULL');
    expect(t.events).to.deep.equal(['refuse bug NULL']);
    expect(t.log.find('command failed').map((r) => r.meta)).to.deep.equal([{ verb: 'NULL', error: undefined, stack: undefined }]);
  });
});
