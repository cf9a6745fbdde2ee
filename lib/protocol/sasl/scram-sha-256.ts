import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { SaslMalformedError, type SaslMechanism, type SaslServer, type SaslStep } from './sasl-mechanism.js';
import { SCRAM_ITERATIONS, type ScramKeys } from './scram-keys.js';

export { SCRAM_ITERATIONS } from './scram-keys.js';

/** RFC 5802 §5.1 `saslname`: `=2C` and `=3D` stand for `,` and `=`; any other `=` is malformed. */
function saslname(text: string, what: string): string {
  if (/=(?!2C|3D)/.test(text)) throw new SaslMalformedError(`malformed SCRAM ${what}`);
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** RFC 5802 §7 `printable` (a nonce): visible ASCII but `,`. */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

const hmac = (key: Buffer, text: string | Buffer): Buffer => createHmac('sha256', key).update(text).digest();

/** The client's first message, parsed (RFC 5802 §7 `client-first-message`). */
interface ClientFirst {
  /** `n,,` / `y,,` / `n,a=…,`: echoed (base64) in the client's final message's channel binding. */
  readonly gs2Header: string;
  readonly authzid?: string;
  readonly username: string;
  readonly nonce: string;
  /** `client-first-message-bare`, the start of AuthMessage. */
  readonly bare: string;
}

function parseClientFirst(text: string): ClientFirst {
  const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/.exec(text);
  if (!m) throw new SaslMalformedError('malformed SCRAM client-first-message');
  // RFC 5802 §6: `p=` asks for channel binding, which only the -PLUS variant (not offered) has.
  if (m[1]!.startsWith('p=')) throw new SaslMalformedError('SCRAM channel binding is not supported (no SCRAM-SHA-256-PLUS)');
  const bare = m[3]!;
  const fields = bare.split(',');
  // `m=` (reserved-mext) names a mandatory extension nobody defines: refuse it, as §5.1 requires.
  if (fields[0]!.startsWith('m=')) throw new SaslMalformedError('unsupported mandatory SCRAM extension');
  const [user, nonce] = fields;
  if (!user?.startsWith('n=') || user.length === 2 || !nonce?.startsWith('r=') || !NONCE.test(nonce.slice(2))) {
    throw new SaslMalformedError('malformed SCRAM client-first-message');
  }
  const authzid = m[2] === undefined ? undefined : saslname(m[2].slice(2), 'authzid');
  return { gs2Header: `${m[1]},${m[2] ?? ''},`, authzid: authzid || undefined, username: saslname(user.slice(2), 'username'), nonce: nonce.slice(2), bare };
}

/** Options for tests (RFC 7677 §3's example fixes both); random by default. */
export interface ScramOptions {
  /** The server's part of the nonce. */
  readonly serverNonce?: () => string;
  /** The salt of this exchange's salted password. */
  readonly salt?: () => Buffer;
}

/**
 * A SCRAM-SHA-256 mechanism (RFC 5802, RFC 7677), without channel binding. Client-first: `n=user,r=nonce` (with a
 * GS2 header), then the server's nonce, salt and iteration count, then the client's proof. The proof is checked by the
 * Authenticator through `verifyWithSecret` (the salted password is derived from the plaintext secret, so it is offered
 * only when the Authenticator knows secrets, like CRAM-MD5, and not when it accepts any credentials: the client
 * checks the server's proof), and the server signature (`v=…`) goes back as the
 * exchange's success data before the protocol's success reply. Passwords are used as UTF-8 without SASLprep, which
 * is the same for ASCII passwords.
 */
export function scramSha256(options: ScramOptions = {}): SaslMechanism {
  const serverNonce = options.serverNonce ?? (() => randomBytes(18).toString('base64'));
  const newSalt = options.salt ?? (() => randomBytes(16));
  return {
    name: 'SCRAM-SHA-256',
    acceptsInitialResponse: true,
    // Not where any login works: no password to prove (the client would refuse a success without the signature).
    isAvailable: (session) => (session.supportsSharedSecrets || session.supportsScramKeys === true) && session.acceptsAnyCredentials !== true,
    start(session): SaslServer {
      let first: ClientFirst | undefined;
      let serverFirst = '';
      let salt: Buffer = Buffer.alloc(0);
      let iterations = SCRAM_ITERATIONS;
      return {
        async next(response): Promise<SaslStep> {
          if (first === undefined) {
            // RFC 4422 §5: a client-first mechanism without an initial response gets an empty challenge first.
            if (response === undefined) return { challenge: Buffer.alloc(0) };
            first = parseClientFirst(response.toString('utf8'));
            // A directory that keeps SCRAM keys names the salt and iteration count they were made with (a made-up,
            // stable salt for an unknown login, so the answer does not tell which logins exist: RFC 5802 §5.1).
            const stored = session.scramParameters ? await session.scramParameters(first.username) : undefined;
            salt = stored?.salt ?? newSalt();
            iterations = stored?.iterations ?? SCRAM_ITERATIONS;
            serverFirst = `r=${first.nonce}${serverNonce()},s=${salt.toString('base64')},i=${iterations}`;
            return { challenge: Buffer.from(serverFirst) };
          }
          const text = (response ?? Buffer.alloc(0)).toString('utf8');
          const m = /^c=([^,]*),r=([^,]*)(?:,[^,]*)*?,p=([A-Za-z0-9+/=]+)$/.exec(text);
          if (!m) throw new SaslMalformedError('malformed SCRAM client-final-message');
          if (Buffer.from(m[1]!, 'base64').toString('utf8') !== first.gs2Header) throw new SaslMalformedError('SCRAM channel binding does not match the client-first-message');
          if (m[2] !== serverFirst.slice(2, serverFirst.indexOf(','))) throw new SaslMalformedError('SCRAM nonce does not match');
          const withoutProof = text.slice(0, text.lastIndexOf(',p='));
          const authMessage = `${first.bare},${serverFirst},${withoutProof}`;
          const proof = Buffer.from(m[3]!, 'base64');
          let serverSignature: Buffer | undefined;
          /** RFC 5802 §3: the proof recovers ClientKey, whose hash must be StoredKey; ServerKey signs the answer. */
          const verifyWithKeys = (storedKey: Buffer, serverKey: () => Buffer): boolean => {
            const signature = hmac(storedKey, authMessage);
            if (proof.length !== signature.length || storedKey.length !== signature.length) return false;
            const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
            const ok = timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey);
            if (ok) serverSignature = hmac(serverKey(), authMessage);
            return ok;
          };
          const verifyWithSecret = (secret: string): boolean => {
            const salted = pbkdf2Sync(Buffer.from(secret, 'utf8'), salt, iterations, 32, 'sha256');
            return verifyWithKeys(createHash('sha256').update(hmac(salted, 'Client Key')).digest(), () => hmac(salted, 'Server Key'));
          };
          // Keys made with another salt or count than this exchange announced cannot match the client's proof.
          const verifyWithScramKeys = (keys: ScramKeys): boolean =>
            keys.salt.equals(salt) && keys.iterations === iterations && verifyWithKeys(keys.storedKey, () => keys.serverKey);
          return {
            done: { username: first.username, authzid: first.authzid, verifyWithSecret, verifyWithScramKeys },
            successData: () => (serverSignature ? Buffer.from(`v=${serverSignature.toString('base64')}`) : undefined),
          };
        },
      };
    },
  };
}

/** SCRAM-SHA-256 with random nonces and salts: the registry's instance. */
export const SCRAM_SHA_256: SaslMechanism = scramSha256();
