import { ContainerModule, type ResolutionContext } from 'inversify';
import { certificateLoginMapper } from '../backends/certificate-login-mappers.js';
import { withUserDirectory } from '../backends/store-authenticator.js';
import { Authenticator } from '../contracts/authenticator.js';
import { CertificateLoginMapper } from '../contracts/certificate-login.js';
import { MailStore } from '../contracts/mail-store.js';
import { CRAM_MD5 } from '../protocol/sasl/cram-md5.js';
import { ExternalMechanism } from '../protocol/sasl/external.js';
import { LOGIN } from '../protocol/sasl/login.js';
import { PLAIN } from '../protocol/sasl/plain.js';
import { SaslMechanism } from '../protocol/sasl/sasl-mechanism.js';
import type { PosternConfig } from './config.js';

/**
 * Authentication for every protocol: the `SaslMechanism` registry (PLAIN, LOGIN, CRAM-MD5, EXTERNAL, in that order
 * of preference; bind one more `SaslMechanism` in your module to add a mechanism to SMTP, POP3 and IMAP at once),
 * the `CertificateLoginMapper` that `config.certLogin` names (none: EXTERNAL is never offered), and the bridge that
 * keeps the store the one user directory whatever is bound as `Authenticator` ({@link withUserDirectory}).
 * `createContainer` loads it with the core.
 */
export function saslModule(config: PosternConfig): ContainerModule {
  return new ContainerModule(({ bind, onActivation }) => {
    bind(SaslMechanism).toConstantValue(PLAIN);
    bind(SaslMechanism).toConstantValue(LOGIN);
    bind(SaslMechanism).toConstantValue(CRAM_MD5);
    bind(SaslMechanism)
      .toResolvedValue((mapper: CertificateLoginMapper | undefined) => new ExternalMechanism(mapper), [{ serviceIdentifier: CertificateLoginMapper, optional: true }])
      .inSingletonScope();
    const certLogin = config.certLogin;
    if (certLogin !== undefined) bind(CertificateLoginMapper).toConstantValue(certificateLoginMapper(certLogin));
    onActivation(Authenticator, (context: ResolutionContext, authenticator: Authenticator) => {
      const store = context.get(MailStore, { optional: true });
      return store ? withUserDirectory(authenticator, store) : authenticator;
    });
  });
}
