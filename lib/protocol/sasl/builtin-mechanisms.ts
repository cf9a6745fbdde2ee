import { CRAM_MD5 } from './cram-md5.js';
import { LOGIN } from './login.js';
import { PLAIN } from './plain.js';
import { SCRAM_SHA_256 } from './scram-sha-256.js';
import type { SaslMechanism } from './sasl-mechanism.js';

/**
 * The mechanisms a session uses when no `SaslMechanism` registry was handed to it (a server built by hand):
 * PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256. The container's registry also holds EXTERNAL (see the `sasl` module).
 */
export const BUILTIN_SASL_MECHANISMS: readonly SaslMechanism[] = [PLAIN, LOGIN, CRAM_MD5, SCRAM_SHA_256];
