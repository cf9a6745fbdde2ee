import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import type { Envelope } from '../../lib/smtp/smtp-backend.js';

/** An SMTP envelope as the session builds it, with fresh strings and a fresh recipient array each time. */
export function envelope(rcptTo: string[], tls = false): Envelope {
  return {
    mailFrom: ['app', '@example.test'].join(''),
    mailParams: { smtpUtf8: false },
    rcptTo,
    helo: 'client.test',
    protocol: tls ? 'ESMTPS' : 'ESMTP',
    peer: {
      id: 'c1',
      protocol: 'smtp',
      remoteAddress: '127.0.0.1',
      remotePort: 40000,
      localAddress: '127.0.0.1',
      localPort: 25,
      security: tls
        ? { tls: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', policyErrors: SslPolicyErrors.None }
        : { tls: false, policyErrors: SslPolicyErrors.None },
    },
  };
}
