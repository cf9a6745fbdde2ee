/** Shared IMAP test harness: a real container with the memory store, both IMAP listeners on port 0, and raw clients. */
import type { ContainerModule } from 'inversify';
import type { PosternConfig } from '../../lib/di/config.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import type { ImapOptions } from '../../lib/imap/imap-options.js';
import type { LineClient } from '../support/line-client.js';
import { startProtocol, type ProtocolHarness } from '../support/protocol-harness.js';

/** The test user. */
export const ALICE = { username: 'alice', password: 'open sesame', addresses: ['alice@example.com'] } as const;

/** A running IMAP server for one test. */
export interface ImapHarness extends ProtocolHarness {
  /** Connects over implicit TLS, reads the greeting and logs alice in (tag `L`). */
  loginAlice(): Promise<LineClient>;
  /** Delivers a message to alice's INBOX. */
  deliver(raw: string | Buffer): Promise<void>;
}

/** Starts IMAP with short test timeouts; `imap` overrides options, `config` global settings. */
export async function startImap(
  imap: ImapOptions = {},
  config: PosternConfig = {},
  modules: ContainerModule[] = [memoryModule, imapModule],
): Promise<ImapHarness> {
  const base = await startProtocol({
    config: { ...config, imap: { failedLoginDelayMs: 5, idleTimeoutMs: 10_000, ...imap, imap: { port: 0 }, imaps: { port: 0 } } satisfies ImapOptions },
    modules,
    plain: 'imap',
    secure: 'imaps',
    users: [ALICE],
  });
  return {
    ...base,
    async loginAlice() {
      const c = await base.connectTls();
      await c.expect(/^\* OK /);
      const lines = await c.command(`L LOGIN alice "${ALICE.password}"`, /^L /);
      if (!lines[lines.length - 1].startsWith('L OK')) throw new Error(`login failed: ${lines.join('|')}`);
      return c;
    },
    async deliver(raw) {
      await base.store.deliver(ALICE.addresses[0], Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'));
    },
  };
}

/** A small RFC 5322 message with CRLF line ends. */
export function message(subject: string, body = 'Hello.\r\n'): string {
  return `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.com>\r\n\r\n${body}`;
}
