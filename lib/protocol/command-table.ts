import type { Logger } from '../log/logger.js';
import { ProtocolSyntaxError, ReplyError } from './reply-error.js';
import { isHttpMethod } from './http-request.js';

/**
 * One command of a protocol: where it is allowed, what it takes, and its handler. `A` is what the handler gets:
 * the argument text (SMTP, POP3), or the protocol's parsed command (IMAP).
 */
export interface CommandSpec<S extends string, C, A = string> {
  /** States in which the command is allowed; elsewhere the protocol's "bad sequence" reply. */
  readonly states: readonly S[];
  /** Argument shape checked before the handler runs. */
  readonly args: 'none' | 'optional' | 'required';
  /** Refused in plaintext unless the session allows insecure use (AUTH, LOGIN, USER/PASS…). */
  readonly needsTls?: true;
  /** Refused before authentication. */
  readonly needsAuth?: true;
  /** The command's own logic; guards have passed. Throw a ReplyError to refuse, ProtocolSyntaxError for bad arguments. */
  run(session: C, args: A): void | Promise<void>;
}

/** A protocol's whole command surface: read this object to know the protocol. Keys are upper-case verbs. */
export type CommandTable<S extends string, C, A = string> = Readonly<Record<string, CommandSpec<S, C, A>>>;

/** Why `dispatch` refused a command before (or instead of) running it. */
export type GuardFailure = 'unknown' | 'state' | 'syntax' | 'tls' | 'auth' | 'bug';

/** What `dispatch` needs from a session: its state and the protocol's wording for each refusal. */
export interface DispatchTarget<S extends string> {
  readonly state: S;
  readonly isSecure: boolean;
  readonly isAuthenticated: boolean;
  /** True when `needsTls` commands may run in plaintext (`allowInsecureAuth`). */
  readonly allowsInsecureAuth: boolean;
  readonly log: Logger;
  /** Sends the protocol's reply for a guard failure (500/503/530, -ERR, BAD/NO…). `detail` is safe to show. */
  refuse(failure: GuardFailure, verb: string, detail?: string): void | Promise<void>;
  /** Sends a ReplyError as-is. */
  sendReplyError(err: ReplyError): void | Promise<void>;
  /** Counts a client error against the budget; returns false when the budget is spent (the session then says goodbye and closes). */
  countError(): boolean | Promise<boolean>;
  /** Resets the consecutive-error count after a command succeeded. */
  clearErrors(): void;
  /** Called after each known command with its verb and duration (metrics); optional. */
  observeCommand?(verb: string, seconds: number): void;
  /** Runs after the guards passed, before the handler (fault injection); true when the command must not run. */
  beforeCommand?(verb: string, args: string): boolean | Promise<boolean>;
  /**
   * An unknown verb that is an HTTP request method (`GET`, `POST`, `CONNECT`…): a browser's request sent to a mail
   * port, the first step of a cross-protocol attack (see `isHttpMethod`). Says the protocol's goodbye and closes;
   * nothing else on the connection runs. `TextSession` implements it; without it the verb is an unknown command.
   */
  refuseHttpRequest?(method: string): void | Promise<void>;
}

/**
 * Runs one command through the guards in a fixed order — unknown verb (an HTTP request method among them ends the
 * session: {@link DispatchTarget.refuseHttpRequest}), wrong state, argument shape, TLS required, auth required — then
 * the handler, and maps what it throws (STYLE §6):
 * ReplyError → sent as-is; ProtocolSyntaxError → syntax reply + error budget; anything else → logged as our
 * bug with its stack and a generic reply (never the error's text on the wire).
 *
 * `args` is the argument text the guards check (empty when there is none); `parsed`, when given, is what the
 * handler gets instead (IMAP passes its parsed command; the table's `A` type says which).
 *
 * Returns a promise only while something is pending: a handler that finished synchronously (returned nothing) is
 * done when `dispatch` returns, with no promise or microtask per command (issue 15). Callers that `await` the result
 * see no difference.
 */
export function dispatch<S extends string, C extends DispatchTarget<S>, A = string>(
  table: CommandTable<S, C, A>,
  session: C,
  verb: string,
  args: string,
  ...parsed: A extends string ? [] : [A]
): void | Promise<void> {
  const spec = Object.prototype.hasOwnProperty.call(table, verb) ? table[verb] : undefined;
  // refuseCommand is a module function rather than a closure made for every command (issue 15: allocation per command).
  if (!spec) return session.refuseHttpRequest && isHttpMethod(verb) ? session.refuseHttpRequest(verb) : refuseCommand(session, 'unknown', verb);
  if (!spec.states.includes(session.state)) return refuseCommand(session, 'state', verb);
  if (spec.args === 'none' && args.length > 0) return refuseCommand(session, 'syntax', verb, 'no arguments allowed');
  if (spec.args === 'required' && args.length === 0) return refuseCommand(session, 'syntax', verb, 'argument required');
  if (spec.needsTls && !session.isSecure && !session.allowsInsecureAuth) return refuseCommand(session, 'tls', verb);
  if (spec.needsAuth && !session.isAuthenticated) return refuseCommand(session, 'auth', verb);
  const argument = (parsed.length > 0 ? parsed[0] : args) as A;
  // Sync `false` (no fault rules) costs no promise and no microtask per command (issue 15).
  const stop = session.beforeCommand?.(verb, args);
  if (stop === true) return;
  if (stop !== undefined && stop !== false) return runAfterFault(spec, session, verb, argument, stop);
  return runCommand(spec, session, verb, argument);
}

/** Runs the handler of a command whose guards passed; a promise only when the handler returned one. */
function runCommand<S extends string, C extends DispatchTarget<S>, A>(spec: CommandSpec<S, C, A>, session: C, verb: string, argument: A): void | Promise<void> {
  // A double from performance.now(), not two BigInts from hrtime.bigint() per command (issue 15).
  const started = session.observeCommand ? performance.now() : 0;
  let pending: void | Promise<void>;
  try {
    pending = spec.run(session, argument);
  } catch (err) {
    observe(session, verb, started);
    return commandFailed(session, verb, err);
  }
  if (pending !== undefined) return settleCommand(session, verb, started, pending);
  session.clearErrors();
  observe(session, verb, started);
}

/** The rest of a command whose handler returned a promise: its outcome mapped as in {@link dispatch}. */
async function settleCommand<S extends string>(session: DispatchTarget<S>, verb: string, started: number, pending: Promise<void>): Promise<void> {
  try {
    await pending;
    session.clearErrors();
  } catch (err) {
    return commandFailed(session, verb, err);
  } finally {
    observe(session, verb, started);
  }
}

/** A fault stage that answered with a promise (a `delay` rule): the command runs after it, unless it said stop. */
async function runAfterFault<S extends string, C extends DispatchTarget<S>, A>(spec: CommandSpec<S, C, A>, session: C, verb: string, argument: A, stop: Promise<boolean>): Promise<void> {
  if (await stop) return;
  return runCommand(spec, session, verb, argument);
}

/** Reports a command's duration to the session's metrics hook, when it has one. */
function observe<S extends string>(session: DispatchTarget<S>, verb: string, started: number): void {
  session.observeCommand?.(verb, (performance.now() - started) / 1e3);
}

/** Maps what a handler threw (STYLE §6): ReplyError as-is, ProtocolSyntaxError as a syntax refusal, else our bug. */
function commandFailed<S extends string>(session: DispatchTarget<S>, verb: string, err: unknown): void | Promise<void> {
  if (err instanceof ReplyError) return session.sendReplyError(err);
  if (err instanceof ProtocolSyntaxError) return refuseCommand(session, 'syntax', verb, err.message);
  session.log.error('command failed', { verb, error: (err as Error)?.message, stack: (err as Error)?.stack });
  return refuseCommand(session, 'bug', verb);
}

/** A guard's (or a syntax error's) refusal: the target's reply, then the error budget except for tls/auth/bug. */
async function refuseCommand<S extends string>(session: DispatchTarget<S>, failure: GuardFailure, verb: string, detail?: string): Promise<void> {
  await session.refuse(failure, verb, detail);
  if (failure !== 'tls' && failure !== 'auth' && failure !== 'bug') await session.countError();
}
