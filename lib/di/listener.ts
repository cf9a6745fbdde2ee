import type { AddressInfo } from 'node:net';
import type { ServiceIdentifier } from 'inversify';

/**
 * Something that listens: every protocol module binds one per port (multi-binding), so the CLI and the test
 * double can start and stop them all without knowing the protocols. `TcpServer` satisfies it.
 */
export interface Listener {
  readonly name: string;
  /** True when TLS starts at connect (smtps, pop3s, imaps); false for STARTTLS/STLS listeners. */
  readonly implicitTls: boolean;
  start(): Promise<AddressInfo>;
  address(): AddressInfo;
  close(): Promise<void>;
}
/** DI token of the {@link Listener} multi-binding. */
export const Listener = Symbol.for('postern.Listener') as ServiceIdentifier<Listener>;
