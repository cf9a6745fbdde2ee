import { ContainerModule, type ResolutionContext } from '../vendor/inversify.js';
import type { SessionHandler, ManagedSession } from '../protocol/session-handler.js';
import { certificateLoginMapper } from '../backends/certificate-login-mappers.js';
import { ensureStoreUser, StoreAuthenticator } from '../backends/store-authenticator.js';
import { Authenticator } from '../contracts/authenticator.js';
import { CertificateLoginMapper } from '../contracts/certificate-login.js';
import { MailStore } from '../contracts/mail-store.js';
import { CRAM_MD5 } from '../protocol/sasl/cram-md5.js';
import { ExternalMechanism } from '../protocol/sasl/external.js';
import { LOGIN } from '../protocol/sasl/login.js';
import { PLAIN } from '../protocol/sasl/plain.js';
import { SaslMechanism } from '../protocol/sasl/sasl-mechanism.js';
import { SCRAM_SHA_256 } from '../protocol/sasl/scram-sha-256.js';
import type { PosternConfig } from './config.js';

/**
 * Authentication for every protocol: the `SaslMechanism` registry (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256, EXTERNAL, in that order
 * of preference; bind one more `SaslMechanism` in your module to add a mechanism to SMTP, POP3 and IMAP at once),
 * and the `CertificateLoginMapper` that `config.certLogin` names (none: EXTERNAL is never offered).
 * `createContainer` loads it with the core.
 */
export function saslModule(config: PosternConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(SaslMechanism).toConstantValue(PLAIN);
    bind(SaslMechanism).toConstantValue(LOGIN);
    bind(SaslMechanism).toConstantValue(CRAM_MD5);
    bind(SaslMechanism).toConstantValue(SCRAM_SHA_256);
    bind(SaslMechanism)
      .toResolvedValue((mapper: CertificateLoginMapper | undefined) => new ExternalMechanism(mapper), [{ serviceIdentifier: CertificateLoginMapper, optional: true }])
      .inSingletonScope();
    const certLogin = config.certLogin;
    if (certLogin !== undefined) bind(CertificateLoginMapper).toConstantValue(certificateLoginMapper(certLogin));
  });
}

/**
 * Part of the protocol servers' activation (`withAuthThrottle`): hands them the registry, and, unless the bound
 * `Authenticator` is the store's own `StoreAuthenticator`, the bridge that keeps the store the one user directory
 * ({@link ensureStoreUser}, run after every successful login). A rebound or decorated Authenticator gets it too,
 * because it is looked up when the server is activated, not when the Authenticator is.
 */
export function withSasl<H extends SessionHandler<ManagedSession>>(context: ResolutionContext, handler: H): H {
  handler.saslMechanisms = context.getAll(SaslMechanism, { optional: true });
  const store = context.get(MailStore, { optional: true });
  const authenticator = context.get(Authenticator, { optional: true });
  if (store && authenticator && !(authenticator instanceof StoreAuthenticator)) handler.userDirectory = (username) => ensureStoreUser(store, username);
  return handler;
}
