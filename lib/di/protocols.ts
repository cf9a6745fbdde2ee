import { IMAP_PROTOCOL } from './imap.module.js';
import { LMTP_PROTOCOL } from './lmtp.module.js';
import { POP3_PROTOCOL } from './pop3.module.js';
import type { ListenerDescriptor, ProtocolDescriptor } from './protocol-descriptor.js';
import { SMTP_PROTOCOL } from './smtp.module.js';

/**
 * Every protocol the mail server knows, in start order. `createMailServerContainer`, `MailServer`, the CLI
 * (`--only`, `--NAME-port`, ready lines) and `startMailServer` read this list: registering a protocol is one line here.
 */
export const PROTOCOLS: readonly ProtocolDescriptor[] = [SMTP_PROTOCOL, POP3_PROTOCOL, IMAP_PROTOCOL, LMTP_PROTOCOL];

/** Every TCP listener of every registered protocol, in start order. */
export function protocolListeners(protocols: readonly ProtocolDescriptor[] = PROTOCOLS): ListenerDescriptor[] {
  return protocols.flatMap((p) => p.listeners);
}

/** The descriptor of a listener (TCP or Unix socket) by name, if a registered protocol declares it. */
export function listenerDescriptor(name: string, protocols: readonly ProtocolDescriptor[] = PROTOCOLS): { protocol: ProtocolDescriptor; listener?: ListenerDescriptor } | undefined {
  for (const p of protocols) {
    const l = p.listeners.find((x) => x.name === name);
    if (l) return { protocol: p, listener: l };
    if (p.unixSocketListener === name) return { protocol: p };
  }
  return undefined;
}
