import { ContainerModule } from '../vendor/inversify.js';
import { Chaos, ChaosToken } from '../chaos/chaos.js';
import { ImapServer } from '../imap/imap-server.js';
import { LmtpServer } from '../lmtp/lmtp-server.js';
import { Pop3Server } from '../pop3/pop3-server.js';
import { FaultInjector } from '../protocol/faults.js';
import { SmtpServer } from '../smtp/smtp-server.js';

/**
 * Fault injection for every protocol: binds one {@link Chaos} (token `ChaosToken`, also the `FaultInjector`) started
 * with `initial` (validated: throws `ChaosConfigError`), and hands it to the SMTP, POP3 and IMAP servers as they are
 * created. Rules change at run time through the bound instance (`set`, `clear`); the HTTP API and the test double
 * use it.
 */
export function chaosModule(initial?: unknown): ContainerModule {
  const chaos = new Chaos(initial);
  return new ContainerModule(({ bind, onActivation }) => {
    bind(ChaosToken).toConstantValue(chaos);
    bind(FaultInjector).toService(ChaosToken);
    const attach = <S extends { faults?: FaultInjector }>(server: S): S => {
      server.faults = chaos;
      return server;
    };
    onActivation(SmtpServer, (_ctx, s) => attach(s));
    onActivation(LmtpServer, (_ctx, s) => attach(s));
    onActivation(Pop3Server, (_ctx, s) => attach(s));
    onActivation(ImapServer, (_ctx, s) => attach(s));
  });
}
