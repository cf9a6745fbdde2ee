import { decodeBase64Strict } from './base64.js';
import { SaslMalformedError, type SaslCredentials, type SaslMechanism, type SaslSessionInfo } from './sasl-mechanism.js';

/** Longest exchange, in client responses: no built-in mechanism needs more than 2 (a bound for custom ones). */
export const MAX_SASL_STEPS = 10;

/**
 * The client's answer to one continuation, read by `TextSession.readContinuation`: a line (trimmed, never logged),
 * the `*` cancel (RFC 4954 §4, RFC 5034 §4, RFC 3501 §6.2.2), an over-long line (answered, its rest skipped),
 * a line ended by a bare LF, or a closed connection.
 */
export type ContinuationResult =
  | { readonly kind: 'line'; readonly text: string }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'too-long' }
  | { readonly kind: 'bare-lf' }
  | { readonly kind: 'closed' };

/**
 * How an exchange ended. The protocol frames the reply:
 * - `done`: credentials for the login policy, and the mechanism's success data if it has any (see `SaslStep`);
 *   `rejected`: a failed login for `username`;
 * - `aborted`: the client cancelled, sent an over-long or bare-LF line, or left (`closed`: send nothing);
 * - `malformed`: bad base64 (`base64`), an initial response to a mechanism that takes none (`initial-response`),
 *   or a message of the wrong shape (`message`); `detail` says which.
 */
export type SaslOutcome =
  | { readonly kind: 'done'; readonly credentials: SaslCredentials; readonly successData?: () => Buffer | undefined }
  | { readonly kind: 'rejected'; readonly username: string }
  | { readonly kind: 'aborted'; readonly reason: 'cancelled' | 'too-long' | 'bare-lf' | 'closed' }
  | { readonly kind: 'malformed'; readonly reason: 'base64' | 'initial-response' | 'message'; readonly detail: string };

/** Sends one base64 challenge in the protocol's framing (`334 `, `+ `) and reads the client's response. */
export type ChallengeFrame = (base64Challenge: string) => Promise<ContinuationResult>;

/**
 * The one SASL loop (go-sasl's `Server.Next` driven the way go-smtp and go-imap drive it): decodes the initial
 * response (`=` is an empty one, `*` cancels; RFC 4954 §4, RFC 5034 §4, RFC 4959 §3), then feeds the mechanism
 * each decoded client response and frames each challenge through `frame`, until the mechanism is done or rejects.
 * Never throws for client behaviour; errors of a mechanism other than {@link SaslMalformedError} are bugs and
 * propagate.
 */
export async function runSaslExchange(
  mechanism: SaslMechanism,
  session: SaslSessionInfo,
  initialResponse: string | undefined,
  frame: ChallengeFrame,
): Promise<SaslOutcome> {
  let response: Buffer | undefined;
  if (initialResponse !== undefined) {
    if (initialResponse === '*') return { kind: 'aborted', reason: 'cancelled' };
    if (!mechanism.acceptsInitialResponse) return { kind: 'malformed', reason: 'initial-response', detail: `${mechanism.name} takes no initial response` };
    const decoded = decode(initialResponse === '=' ? '' : initialResponse);
    if (decoded === undefined) return { kind: 'malformed', reason: 'base64', detail: 'invalid base64' };
    response = decoded;
  }
  const server = mechanism.start(session);
  for (let step = 0; step <= MAX_SASL_STEPS; step++) {
    let next;
    try {
      next = await server.next(response);
    } catch (err) {
      if (err instanceof SaslMalformedError) return { kind: 'malformed', reason: 'message', detail: err.message };
      throw err;
    }
    if ('done' in next) return next.successData ? { kind: 'done', credentials: next.done, successData: next.successData } : { kind: 'done', credentials: next.done };
    if ('rejected' in next) return { kind: 'rejected', username: next.rejected.username };
    const answer = await frame(next.challenge.toString('base64'));
    if (answer.kind !== 'line') return { kind: 'aborted', reason: answer.kind };
    response = decode(answer.text);
    if (response === undefined) return { kind: 'malformed', reason: 'base64', detail: 'invalid base64' };
  }
  return { kind: 'malformed', reason: 'message', detail: `${mechanism.name} exchange too long` };
}

/** An exchange that ended without credentials: what the protocols refuse with. */
export type SaslRefusal = Exclude<SaslOutcome, { kind: 'done' | 'rejected' }>;

/**
 * Sends a mechanism's success data (RFC 4422 §5, e.g. SCRAM's `v=` server signature) once the Authenticator accepted,
 * as one more challenge through `frame`, and reads the client's answer, which must be empty (RFC 4954 §4, RFC 5034
 * §4, RFC 3501 §6.2.2). Resolves undefined when the login may complete (also when the mechanism has nothing to
 * send), else the refusal: the client cancelled, left, or sent something other than the empty response.
 */
export async function sendSuccessData(successData: () => Buffer | undefined, frame: ChallengeFrame): Promise<SaslRefusal | undefined> {
  const data = successData();
  if (data === undefined) return undefined;
  const answer = await frame(data.toString('base64'));
  if (answer.kind !== 'line') return { kind: 'aborted', reason: answer.kind };
  if (answer.text !== '') return { kind: 'malformed', reason: 'message', detail: 'expected an empty response to the final SASL data' };
  return undefined;
}

/** Completes a login at the protocol's one completion point (`confirm`: the success-data step, when there is one). */
export type SaslLogin = (credentials: SaslCredentials, rejected: boolean, confirm?: () => Promise<boolean>) => Promise<void>;

/**
 * An AUTH/AUTHENTICATE command's whole exchange: {@link runSaslExchange}, then `login` with the credentials (and, for a
 * mechanism with success data, a `confirm` step that sends it through `frame` with {@link sendSuccessData}), `login`
 * with `rejected` when the mechanism refused, or `refuse` (the protocol's reply; it returns without one only for a
 * closed connection) for everything else. `confirm` resolves false when it refused.
 */
export async function runSaslLogin(
  mechanism: SaslMechanism,
  session: SaslSessionInfo,
  initialResponse: string | undefined,
  frame: ChallengeFrame,
  login: SaslLogin,
  refuse: (refusal: SaslRefusal) => void,
): Promise<void> {
  const outcome = await runSaslExchange(mechanism, session, initialResponse, frame);
  if (outcome.kind === 'rejected') return login({ username: outcome.username }, true);
  if (outcome.kind !== 'done') return refuse(outcome);
  const successData = outcome.successData;
  if (!successData) return login(outcome.credentials, false);
  return login(outcome.credentials, false, async () => {
    const refusal = await sendSuccessData(successData, frame);
    if (refusal === undefined) return true;
    refuse(refusal);
    return false;
  });
}

function decode(text: string): Buffer | undefined {
  try {
    return decodeBase64Strict(text);
  } catch {
    return undefined;
  }
}
