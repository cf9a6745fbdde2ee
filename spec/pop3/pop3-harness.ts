/** Shared POP3 test harness: a real container with the memory store, both POP3 listeners on port 0, and clients. */
import { lockMaildrop } from '../../lib/pop3/pop3-maildrop-lock.js';
import type { Container } from 'inversify';
import type { PosternConfig } from '../../lib/di/config.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import type { Pop3Options } from '../../lib/pop3/pop3-options.js';
import type { LineClient } from '../support/line-client.js';
import { startProtocol, type ProtocolHarness } from '../support/protocol-harness.js';

/** The test user: a password with a space, as RFC 1939 PASS permits. */
export const ALICE = { username: 'alice', password: 'open sesame', addresses: ['alice@example.com'] } as const;

/** A running POP3 server for one test. */
export interface Pop3Harness extends ProtocolHarness {
  /** Connects over implicit TLS, reads the greeting and logs alice in. */
  loginAlice(): Promise<LineClient>;
  /** Delivers a message to alice. */
  deliver(raw: string | Buffer): Promise<void>;
  /** Resolves once nobody holds the user's maildrop lock (the server noticed a dropped client). */
  lockReleased(username: string): Promise<void>;
}

/** Starts POP3 with short test timeouts; `pop3` overrides options, `config` global settings; `prepare` may rebind before anything resolves. */
export async function startPop3(
  pop3: Pop3Options = {},
  config: PosternConfig = {},
  modules = [memoryModule, pop3Module],
  prepare?: (container: Container) => void,
): Promise<Pop3Harness> {
  const base = await startProtocol({
    config: { ...config, pop3: { failedLoginDelayMs: 5, idleTimeoutMs: 10_000, ...pop3, pop3: { port: 0 }, pop3s: { port: 0 } } satisfies Pop3Options },
    modules,
    plain: 'pop3',
    secure: 'pop3s',
    users: [ALICE],
    prepare,
  });
  const { store } = base;
  return {
    ...base,
    async loginAlice() {
      const c = await base.connectTls();
      await c.expect(/^\+OK /);
      await c.command(`USER ${ALICE.username}`, /^\+OK/);
      const [reply] = await c.command(`PASS ${ALICE.password}`, /^[+-]/);
      if (!reply.startsWith('+OK')) throw new Error(`login failed: ${reply}`);
      return c;
    },
    async deliver(raw) {
      await store.deliver(ALICE.addresses[0], Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'));
    },
    async lockReleased(username) {
      for (let i = 0; i < 1000; i++) {
        const release = await lockMaildrop(store, username, 'spec').catch(() => undefined);
        if (release) return release();
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error('lock never released');
    },
  };
}

/** A small RFC 5322 message with CRLF line ends. */
export function message(subject: string, body = 'Hello.\r\n'): string {
  return `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n\r\n${body}`;
}
