import { DEFAULT_PORTS, LISTENER_NAMES } from '../di/mail-server.js';

/** `postern --help`: every flag, grouped as the README's operator section is. */
export const HELP = `Usage: postern [options]

Runs an SMTP, POP3 and IMAP server (STARTTLS and implicit TLS), and LMTP when asked, over one mail store.

Listeners (default: all six on 127.0.0.1)
  --host ADDR               bind address (default 127.0.0.1; :: or 0.0.0.0 for all)
  --only LIST               comma-separated subset of: ${LISTENER_NAMES.join(',')}
                            (default: all but lmtp)
  --port-offset N           add N to every default port
${LISTENER_NAMES.map((n) => `  --${n}-port PORT`.padEnd(28) + `default ${DEFAULT_PORTS[n]}`).join('\n')}
                            (--lmtp-port also turns LMTP on; RFC 2033, LHLO, one reply per recipient)
  --lmtp-socket PATH        also serve LMTP on this Unix socket (Postfix: mailbox_transport = lmtp:unix:PATH)
  --lmtp-socket-mode MODE   the socket's file mode, octal (e.g. 660; default 777 less the umask)

Users and mail store
  --user LOGIN:PASSWORD@DOMAIN   create a user (repeatable); mail for LOGIN@DOMAIN, login as LOGIN or the address
  --auth-disabled           any login works; unknown recipients get a mailbox (GreenMail style)
  --store memory|maildir:PATH    where mail lives (default memory)
  --store postgres://USER:PASSWORD@HOST:PORT/DB  PostgreSQL, shared by every node on that database
                            (also postgresql://; without a password in the URL, PGPASSWORD is used)
  --postmaster LOGIN        who receives mail for <postmaster> (default: the first user by name)
  --quota SIZE              storage quota of every user (RFC 9208; 52428800, 512K, 50M, 2G): past it SMTP and
                            LMTP answer 552 5.2.2, IMAP APPEND/COPY NO [OVERQUOTA]; IMAP offers QUOTA (default none)
  --user-quota LOGIN:SIZE   one user's quota, over --quota (repeatable)
  --dsn                     offer DSN (RFC 3461) on SMTP and LMTP and keep each message's RET, ENVID, NOTIFY and
                            ORCPT in its envelope (HTTP API: envelope.dsn); NOTIFY=SUCCESS deliveries are reported
                            to local senders' INBOX, to others through --dsn-relay
  --dsn-relay smtp[s]://[USER:PASSWORD@]HOST[:PORT]   relay the DSN notices of senders that are not local users
                            through this SMTP server (your MTA), from <>; --dsn-relay-ca FILE to verify it

TLS
  --cert FILE --key FILE    PEM certificate (with chain) and key
  --pfx FILE [--passphrase P]    PKCS#12 instead of PEM
                            (none given: a self-signed certificate is generated and its fingerprint printed)
  --ca FILE                 CA bundle for client certificates
  --client-cert request|require  ask for (or insist on) a client certificate signed by --ca
  --cert-login cn|email|FILE     SASL EXTERNAL: log a validated client certificate in as its subject CN, its
                            SAN e-mail address, or the login FILE maps its SHA-256 fingerprint to (lines
                            "FINGERPRINT LOGIN [AUTHZID...]"); needs --client-cert
  --tls-min 1.2|1.3         lowest TLS version (default 1.2)
  --tls-groups LIST         key-exchange groups, colon-separated, preferred first (default X25519:P-256:P-384;
                            e.g. add :P-521 for a client that offers nothing else)
  --tls-alpn LIST|none      ALPN ids a TLS client that offers ALPN must include, comma-separated (default: the
                            protocol's own, smtp, pop3 or imap; a browser's h2/http/1.1 gets no_application_protocol);
                            none: ALPN off, any offer accepted
  --cert-dir DIR            certificates per SNI name from a directory of PEM/PFX files (watched; --passphrase
                            opens encrypted ones); names it has no certificate for get --cert/--pfx's
  VALUE@LISTENER            any of the TLS flags above for one listener only, e.g. --client-cert require@imaps,
                            --cert FILE@smtps --key FILE@smtps (--client-cert none@LISTENER turns it off there)
  --allow-insecure-auth     allow AUTH/LOGIN/USER before TLS (off by default)

HTTP API and web inbox (listener "http", see README "HTTP API")
  --http-auth USER:PASSWORD require HTTP Basic authentication (all but /healthz)
  --http-cors ORIGIN        allow browser calls to /api/v1 from ORIGIN (none by default)

Fault injection (see README "Fault injection")
  --chaos JSON|@FILE        rules to start with, as for PUT /api/v1/chaos:
                            '{"rules":[{"protocol":"smtp","stage":"rcpt","reply":"451 4.3.0 try later"}],"seed":7}'
Automatic certificates (ACME, RFC 8555; instead of --cert/--pfx)
  --acme-directory URL      the CA's directory, e.g. https://acme-v02.api.letsencrypt.org/directory
  --acme-email ADDR         account contact (expiry notices); you agree to the CA's terms of service
  --acme-domain NAME[,NAME…]     names on the certificate; the CA validates them over TLS-ALPN-01 on the
                            implicit-TLS listeners (it connects to port 443: forward it to one of them)
  --acme-state DIR          account key and certificates (default ./postern-acme)
  --acme-ca FILE            trust this CA for the directory's HTTPS (a private or test CA such as Pebble)
  --acme-challenge LIST     challenge types in order of preference (default tls-alpn-01,http-01); http-01 is
                            answered by the HTTP listener (the CA connects to port 80: forward it there)
                            SIGHUP orders a new certificate now; with --workers the primary orders for all

Limits (0 turns one off)
  --max-connections N       connections per listener (default 1000)
  --max-connections-per-address N         per client address and listener (default 100)
  --max-connections-per-address-total N   per client address, all listeners (default 300)
  --max-connections-total N               all listeners together (default 6000)
  --pre-auth-timeout SECONDS    end sessions not logged in by then; SMTP: no login and no MAIL (default 120)
  --command-timeout SECONDS     longest time one command line may trickle in (default 60)
  --auth-failures-per-address N   failed logins from one address before it is refused for a while (default 30)
  --auth-failures-per-account N   failed logins on one account before it is refused (default 10)

Metrics
  --metrics-port PORT       serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP on --host)

Scaling out
  --workers N|auto          serve with N processes sharing the ports (auto: one per CPU core; default 1).
                            Needs a store shared between processes (maildir:PATH, postgres://…), not memory
  --proxy-protocol          expect a PROXY protocol v1/v2 header (HAProxy send-proxy/send-proxy-v2) first on
                            every connection; the client address in it is the one logged and recorded
  --proxy-trusted CIDR[,CIDR…]   the proxies allowed to send it (required with --proxy-protocol)
  --proxy-listeners LIST    only these listeners expect the header (default: every listener)

Configuration file and environment
  --config FILE             more options, one per line: a flag's name without --, then its value
                            ("smtp-port 2525", "user = alice:secret@example.com", "auth-disabled"; # comments)
  POSTERN_<FLAG>            every flag also comes from the environment: POSTERN_SMTP_PORT=2525, POSTERN_CONFIG=FILE;
                            repeatable flags one value per line, booleans true|false. The command line wins over the
                            environment, the environment over the file

Logging and misc
  --log-level error|warn|info|debug   (default info; logs go to stderr)
  --log-format text|json    (default text)
  --check                   read the configuration and the TLS files, print what would listen, and exit
                            (0: OK; 2 and one line: what a start would refuse); binds nothing, opens no store
  -h, --help                this text
  -v, --version             print the version
`;
