import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { cramMd5Challenge, decodeCramMd5, verifyCramMd5 } from '../../protocol/sasl/cram-md5.js';
import { decodeLoginResponse, LOGIN_CHALLENGES } from '../../protocol/sasl/login.js';
import { decodePlain } from '../../protocol/sasl/plain.js';
import type { Pop3Connection } from '../pop3-connection.js';
import { multiline, Pop3Error, safeText } from '../pop3-replies.js';

/**
 * AUTH mechanism [initial-response] (RFC 5034 §4). PLAIN (RFC 4616) and LOGIN take an optional initial
 * response (`=` means an empty one); without it the server sends `+ ` and reads the response. `*` cancels.
 * CRAM-MD5 (RFC 2195) is offered when the Authenticator knows shared secrets. `AUTH` alone lists the
 * mechanisms (the pre-RFC 5034 form some clients still send).
 * @throws Pop3Error for an unknown mechanism, cancel, or a failed login; ProtocolSyntaxError for bad base64.
 */
export async function auth(conn: Pop3Connection, args: string): Promise<void> {
  if (args === '') {
    conn.send(multiline('SASL mechanisms follow', conn.saslMechanisms));
    return;
  }
  const [word, initial, ...extra] = args.split(' ');
  const mechanism = word.toUpperCase();
  if (extra.length > 0) throw new ProtocolSyntaxError('usage: AUTH mechanism [initial-response]');
  if (!conn.saslMechanisms.includes(mechanism)) throw new Pop3Error(undefined, `unsupported mechanism ${safeText(mechanism)}`);
  // RFC 5034 §4: "=" is an empty initial response.
  const initialResponse = initial === '=' ? '' : initial;
  if (initialResponse === '*') throw new Pop3Error(undefined, 'authentication cancelled');
  switch (mechanism) {
    case 'PLAIN':
      return plain(conn, initialResponse);
    case 'LOGIN':
      return login(conn, initialResponse);
    default:
      if (initialResponse !== undefined) throw new ProtocolSyntaxError('CRAM-MD5 takes no initial response');
      return cramMd5(conn);
  }
}

async function plain(conn: Pop3Connection, initial: string | undefined): Promise<void> {
  const response = initial ?? (await conn.readSaslResponse(''));
  if (response === undefined) return;
  const { authzid, authcid, password } = decodePlain(response);
  await conn.login('PLAIN', { username: authcid, authzid, password });
}

async function login(conn: Pop3Connection, initial: string | undefined): Promise<void> {
  const first = initial ?? (await conn.readSaslResponse(LOGIN_CHALLENGES.username));
  if (first === undefined) return;
  const username = decodeLoginResponse(first);
  const second = await conn.readSaslResponse(LOGIN_CHALLENGES.password);
  if (second === undefined) return;
  await conn.login('LOGIN', { username, password: decodeLoginResponse(second) });
}

async function cramMd5(conn: Pop3Connection): Promise<void> {
  const challenge = cramMd5Challenge(conn.hostname);
  const response = await conn.readSaslResponse(challenge.base64);
  if (response === undefined) return;
  const { username, digest } = decodeCramMd5(response);
  await conn.login('CRAM-MD5', { username, verifyWithSecret: (secret) => verifyCramMd5(challenge.text, secret, digest) });
}
