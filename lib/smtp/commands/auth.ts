import type { AuthRequest } from '../../contracts/authenticator.js';
import { decodeBase64Strict } from '../../protocol/sasl/base64.js';
import { cramMd5Challenge, decodeCramMd5, verifyCramMd5 } from '../../protocol/sasl/cram-md5.js';
import { decodeLoginResponse, LOGIN_CHALLENGES } from '../../protocol/sasl/login.js';
import { decodePlain } from '../../protocol/sasl/plain.js';
import type { SmtpConnection } from '../smtp-connection.js';
import { reply, SmtpReplyError } from '../smtp-replies.js';

type Credentials = Pick<AuthRequest, 'username' | 'authzid' | 'password' | 'verifyWithSecret'>;

/**
 * RFC 4954 §4: a client response the server cannot base64-decode MUST get 501 with enhanced code 5.5.2.
 * Counted against the error budget like any syntax error.
 */
function checkBase64(text: string): void {
  try {
    decodeBase64Strict(text);
  } catch {
    throw new SmtpReplyError(501, '5.5.2', 'Cannot decode response', true);
  }
}

/** Reads the client's answer to a challenge (checked to be base64); undefined when the connection closed. */
async function respond(conn: SmtpConnection, challenge: string): Promise<string | undefined> {
  const response = await conn.readSaslResponse(challenge);
  if (response !== undefined) checkBase64(response);
  return response;
}

function initial(arg: string | undefined): string | undefined {
  return arg === '=' ? '' : arg;
}

async function plain(conn: SmtpConnection, arg: string | undefined): Promise<Credentials | undefined> {
  const response = initial(arg) ?? (await respond(conn, ''));
  if (response === undefined) return undefined;
  const c = decodePlain(response);
  return { username: c.authcid, authzid: c.authzid || undefined, password: c.password };
}

async function login(conn: SmtpConnection, arg: string | undefined): Promise<Credentials | undefined> {
  const user = initial(arg) ?? (await respond(conn, LOGIN_CHALLENGES.username));
  if (user === undefined) return undefined;
  const username = decodeLoginResponse(user);
  const pass = await respond(conn, LOGIN_CHALLENGES.password);
  if (pass === undefined) return undefined;
  return { username, password: decodeLoginResponse(pass) };
}

async function cramMd5(conn: SmtpConnection, arg: string | undefined): Promise<Credentials | undefined> {
  // RFC 2195: no initial response.
  if (arg !== undefined) throw new SmtpReplyError(501, '5.5.4', 'CRAM-MD5 takes no initial response', true);
  const challenge = cramMd5Challenge(conn.settings.hostname);
  const response = await respond(conn, challenge.base64);
  if (response === undefined) return undefined;
  const { username, digest } = decodeCramMd5(response);
  return { username, verifyWithSecret: (secret) => verifyCramMd5(challenge.text, secret, digest) };
}

/**
 * AUTH (RFC 4954). Guards already ran: after EHLO, outside a transaction, over TLS (or `allowInsecureAuth`).
 * Mechanisms PLAIN (RFC 4616), LOGIN, and CRAM-MD5 (RFC 2195) when the Authenticator knows shared secrets.
 * Replies: 235 2.7.0 ok; 535 5.7.8 bad credentials, after `failedLoginDelayMs`, and `421 4.7.0` + close at the
 * `maxLoginFailures`th; 454 4.7.0 temporary failure;
 * 504 5.5.4 unknown mechanism; 501 5.5.2 undecodable base64, 501 `*` cancel; 503 5.5.1 when already authenticated.
 */
export async function auth(conn: SmtpConnection, args: string): Promise<void> {
  if (conn.isAuthenticated) throw new SmtpReplyError(503, '5.5.1', 'Already authenticated');
  const [rawMechanism, arg, extra] = args.split(' ');
  if (extra !== undefined) throw new SmtpReplyError(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]', true);
  const mechanism = rawMechanism.toUpperCase();
  const run =
    mechanism === 'PLAIN' ? plain : mechanism === 'LOGIN' ? login : mechanism === 'CRAM-MD5' && conn.deps.authenticator.supportsSharedSecrets ? cramMd5 : undefined;
  if (!run) throw new SmtpReplyError(504, '5.5.4', 'Unrecognized authentication type');
  if (arg !== undefined && arg !== '=') checkBase64(arg); // 501 before any challenge
  const creds = await run(conn, arg);
  if (!creds) return; // connection closed mid-exchange
  const peer = conn.peer;
  if (conn.isLoginThrottled({ user: creds.username, mechanism })) throw new SmtpReplyError(454, '4.7.0', 'Too many failed logins, try again later');
  const result = await conn.deps.authenticator.authenticate({ protocol: 'smtp', mechanism, peer, ...creds });
  if (!result.ok) {
    if (result.reason === 'temporary-failure') {
      conn.log.warn('auth temporarily unavailable', { user: creds.username, mechanism });
      throw new SmtpReplyError(454, '4.7.0', 'Temporary authentication failure');
    }
    const { failedLoginDelayMs: delayMs, maxLoginFailures: maxFailures } = conn.settings;
    const last = await conn.recordLoginFailure({ user: creds.username, mechanism }, { delayMs, maxFailures });
    if (last) {
      conn.send(reply(535, '5.7.8', 'Authentication credentials invalid'));
      conn.send(reply(421, '4.7.0', 'Too many failed authentication attempts, closing connection'));
      await conn.end('closed');
      return;
    }
    // Also counted against the error budget, like any refused command.
    throw new SmtpReplyError(535, '5.7.8', 'Authentication credentials invalid', true);
  }
  await conn.runHooks((h) => h.onAuth?.({ username: result.username, mechanism, peer }));
  conn.user = result.username;
  conn.recordLoginSuccess(creds.username, mechanism);
  conn.log.info('auth succeeded', { user: result.username, mechanism });
  conn.send(reply(235, '2.7.0', 'Authentication successful'));
}
