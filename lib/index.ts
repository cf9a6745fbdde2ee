/**
 * Postern's public API. Import from the package root: `import { TcpServer, createContainer } from 'postern'`.
 * @packageDocumentation
 */
// Core: TCP, connections, TLS.
export { TcpServer, TcpServerOptions, ConnectionHandler, MAX_CONNECTIONS, CLOSE_TIMEOUT_MS } from './core/tcp-server.js';
export type { ListenerInfo } from './core/tcp-server.js';
export { Connection } from './core/connection.js';
export type { SecurityState, CloseReason, ConnectionEvents } from './core/connection.js';
export { TcpClient } from './core/tcp-client.js';
export type { TcpClientOptions } from './core/tcp-client.js';
export { ServerSecurity, ServerSecurityToken, CertificateError, HANDSHAKE_TIMEOUT_MS, DEFAULT_TLS12_CIPHERS, DEFAULT_TLS_GROUPS, splitPemList } from './core/server-security.js';
export type { ServerSecurityOptions, CertificateSource } from './core/server-security.js';
export { ClientSecurity } from './core/client-security.js';
export type { ClientSecurityOptions } from './core/client-security.js';
export { SslProtocols, DEFAULT_PROTOCOLS, SslProtocolsError, parseSslProtocols, protocolsFrom } from './core/ssl-protocols.js';
export { SslPolicyErrors, X509ChainStatusFlags, describePolicyErrors } from './core/policy-errors.js';
export type {
  X509Chain,
  X509ChainStatus,
  RemoteCertificateValidationCallback,
  LocalCertificateSelectionCallback,
  LocalCertificate,
} from './core/policy-errors.js';
export { buildChain, hasChainErrors } from './core/certificate-chain.js';
export { TlsHandshakeError } from './core/tls-errors.js';
export { CertificateStore, CERTIFICATE_STORE_DEBOUNCE_MS } from './core/certificate-store.js';
export type { CertificateStoreOptions, StoredCertificate, CertificateFileProblem } from './core/certificate-store.js';
export { ListenerSecurities, ListenerSecuritiesToken } from './core/listener-securities.js';
export type { ListenerSecurityOverride } from './core/listener-securities.js';
export type { TlsHandshakeFailure } from './core/tls-errors.js';
export { generateDevCertificates, writeDevCertificates } from './core/dev-certificates.js';
export { AcmeCertificateManager } from './core/acme-certificates.js';
export type { AcmeOptions, AcmeChallengeType, AcmeCertificateTarget } from './core/acme-certificates.js';
export { TlsAlpnChallenges, ACME_TLS_ALPN_PROTOCOL } from './core/tls-alpn-challenges.js';
export { OcspStapler } from './core/ocsp-stapler.js';
export { buildOcspRequest, parseOcspResponse, fetchOcspResponse, ocspResponderUrl, OcspError } from './core/ocsp.js';
export type { OcspStatus, OcspCertStatus } from './core/ocsp.js';
export { parseProxyHeader, formatProxyV1, formatProxyV2, ProxyTrust, ProxyConfigError, PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES } from './core/proxy-protocol.js';
export type { ProxyHeader, ProxyEndpoint, ProxyParseResult, ProxyHeaderErrorReason } from './core/proxy-protocol.js';
export { readProxyHeader, ProxyHeaderError, PROXY_HEADER_TIMEOUT_MS } from './core/proxy-header-reader.js';
export type { ProxyReadFailure } from './core/proxy-header-reader.js';
export type { ProxyProtocolOptions } from './core/tcp-server.js';
export type { ConnectionOptions } from './core/connection.js';
export { TicketKeyRotation, generateTicketKeys, TICKET_KEY_BYTES, TICKET_KEY_ROTATION_MS } from './core/ticket-keys.js';

// Engine: line framing, command tables, errors, SASL.
export { LineReader } from './protocol/line-reader.js';
export type { LineResult, LineReaderOptions } from './protocol/line-reader.js';
export { dispatch } from './protocol/command-table.js';
export type { CommandSpec, CommandTable, DispatchTarget, GuardFailure } from './protocol/command-table.js';
export { ReplyError, ProtocolSyntaxError } from './protocol/reply-error.js';
export { TextSession } from './protocol/text-session.js';
export type { LoginPolicy, LoginCheck } from './protocol/text-session.js';
export { SessionHandler } from './protocol/session-handler.js';
export type { ManagedSession } from './protocol/session-handler.js';
export type { SessionLimits } from './protocol/text-session.js';
export * as limits from './protocol/limits.js';

// Contracts.
export { MailStore, MailStoreError, MailStoreOptions, isMailStoreError, supportsMaildropLock, supportsWatch } from './contracts/mail-store.js';
// A stored message's optional capabilities (what a store of your own may offer, and the checks Postern makes).
export { canReadPrefix, hasCachedStructure, hasMessageIdentity, isStreamable } from './contracts/mail-store.js';
export type { CachedStructure, MessageIdentity, PrefixReadableMessage, StreamableMessage } from './contracts/mail-store.js';
export type {
  UserMailboxes,
  StoredMessage,
  MailboxInfo,
  MailboxEvent,
  UserDirectory,
  DeliverOptions,
  DeliveryEnvelope,
  MaildropLocking,
  MailboxWatching,
  MailStoreErrorCode,
} from './contracts/mail-store.js';
export { supportsQuota } from './contracts/quota.js';
export type { QuotaOptions, QuotaReporting, QuotaUsage } from './contracts/quota.js';

// Logging and assembly.
export { Logger, createLogger, debugEnabled, flushLogOutput } from './log/logger.js';
export type { LoggerOptions } from './log/logger.js';
export { createContainer } from './di/create-container.js';
export { coreModule, TcpServerFactory } from './di/core.module.js';
export { PosternConfig } from './di/config.js';
export { Listener } from './di/listener.js';

// SMTP (RFC 5321 + STARTTLS, AUTH, SIZE, PIPELINING, 8BITMIME, SMTPUTF8, CHUNKING).
export { SmtpServer } from './smtp/smtp-server.js';
export { SmtpBackend, SmtpHooks } from './smtp/smtp-backend.js';
export type { SmtpSession, SmtpContext, Envelope, MailParams, RcptParams, SmtpAuthInfo } from './smtp/smtp-backend.js';
export { MailStoreSmtpBackend } from './smtp/mail-store-smtp-backend.js';
export { DsnNoticeSender, LocalDsnNoticeSender, deliveredNotice, successNoticeRecipients } from './smtp/dsn-notices.js';
export type { DsnNotice, DeliveredReport } from './smtp/dsn-notices.js';
export { RelayDsnNoticeSender, parseDsnRelayUrl } from './smtp/dsn-relay.js';
export type { DsnRelayOptions } from './smtp/dsn-relay.js';
export { SmtpReplyError } from './smtp/smtp-replies.js';
export { SmtpSettings, resolveSmtpSettings, SMTP_PORT, SMTPS_PORT } from './smtp/smtp-options.js';
export type { SmtpOptions, SmtpListenerOptions, BareLfPolicy } from './smtp/smtp-options.js';
export { SMTP_COMMANDS } from './smtp/smtp-commands.js';
export type { SmtpState } from './smtp/smtp-state.js';
export { smtpModule } from './di/smtp.module.js';
// SMTP building blocks for protocols built on SMTP (LMTP is one): the session base, address parsing, the Received:
// header, body delivery to the hooks and the backend, replies and the EHLO keywords.
export { SmtpConnection } from './smtp/smtp-connection.js';
export type { SmtpConnectionDeps, Transaction, BdatTransfer } from './smtp/smtp-connection.js';
export { parsePath, parseParams, decodeXtext, domainOf, isNonAscii, MAX_LOCAL_PART_OCTETS, MAX_DOMAIN_OCTETS } from './smtp/smtp-address.js';
export type { ParsedPath } from './smtp/smtp-address.js';
export { receivedHeader, withKeyword, rfc5322Date } from './smtp/smtp-received.js';
export type { ReceivedFacts } from './smtp/smtp-received.js';
export { BodyDelivery, BodyAbortedError } from './smtp/smtp-body.js';
export type { BodyConsumer } from './smtp/smtp-body.js';
export { BareLfFilter, receive as smtpData, bdat as smtpBdat } from './smtp/commands/data.js';
export { ehlo as smtpEhlo, helo as smtpHelo, ehloKeywords } from './smtp/commands/hello.js';
export type { CapabilityInputs } from './smtp/commands/hello.js';
export { reply, multiline, REPLIES } from './smtp/smtp-replies.js';
export { ANY_STATE } from './smtp/smtp-state.js';
export { supportsLmtpData } from './smtp/smtp-backend.js';
export type { LmtpDataSession, RecipientStatus } from './smtp/smtp-backend.js';
export { SMTP_PROTOCOL } from './di/smtp.module.js';

// LMTP (RFC 2033: LHLO, one reply per recipient, STARTTLS, CHUNKING; TCP and Unix socket).
export { LmtpServer } from './lmtp/lmtp-server.js';
export { LmtpConnection } from './lmtp/lmtp-connection.js';
export { LMTP_COMMANDS } from './lmtp/lmtp-commands.js';
export { LmtpSettings, resolveLmtpSettings, LMTP_PORT } from './lmtp/lmtp-options.js';
export type { LmtpOptions } from './lmtp/lmtp-options.js';
export { lmtpModule, LMTP_PROTOCOL } from './di/lmtp.module.js';

// Protocol descriptors: what the assembly (createMailServerContainer, MailServer, the CLI, startMailServer) loops over.
export { ProtocolModule, protocolSection, listenerSection, isProtocolModule } from './di/protocol-descriptor.js';
export type { ProtocolDescriptor, ListenerDescriptor, ListenerSectionOptions, ProtocolBinding, ProtocolShape } from './di/protocol-descriptor.js';
export { PROTOCOLS, protocolListeners, listenerDescriptor } from './di/protocols.js';
export { MessageHeader } from './smtp/message-header.js';
export { MAX_HEADER_OCTETS } from './smtp/message-editor.js';
export type { MessageChange } from './smtp/message-editor.js';

// POP3 (RFC 1939 + CAPA, STLS, SASL, RESP-CODES).
export { Pop3Server } from './pop3/pop3-server.js';
export { Pop3Error } from './pop3/pop3-replies.js';
export { Pop3Settings, resolvePop3Settings, POP3_PORT, POP3S_PORT } from './pop3/pop3-options.js';
export type { Pop3Options, Pop3ListenerOptions } from './pop3/pop3-options.js';
export { pop3Module } from './di/pop3.module.js';
export { POP3_PROTOCOL } from './di/pop3.module.js';
export { Pop3Hooks } from './pop3/pop3-hooks.js';
export type { Pop3LoginInfo, Pop3MaildropAccess } from './pop3/pop3-hooks.js';

// IMAP (RFC 3501 / 9051 subset with IDLE, UIDPLUS, MOVE, LITERAL+, NAMESPACE, ID, ENABLE).
export { ImapServer } from './imap/imap-server.js';
export { ImapError } from './imap/imap-replies.js';
export { ImapSettings, resolveImapSettings, IMAP_PORT, IMAPS_PORT } from './imap/imap-options.js';
export type { ImapOptions, ImapListenerOptions } from './imap/imap-options.js';
export { imapModule } from './di/imap.module.js';
export { IMAP_PROTOCOL } from './di/imap.module.js';
export { ImapHooks } from './imap/imap-hooks.js';
export type { ImapLoginInfo, ImapMailboxAccess, ImapMailboxAccessKind } from './imap/imap-hooks.js';

// Stores and authentication.
export { MemoryMailStore } from './backends/memory/memory-mail-store.js';
export { MaildirMailStore, MaildirMailStoreOptions } from './backends/maildir/maildir-mail-store.js';
export { PostgresMailStore, PostgresMailStoreOptions } from './backends/postgres/postgres-mail-store.js';
export { StoreAuthenticator } from './backends/store-authenticator.js';
export { withQuota } from './backends/quota/quota-mail-store.js';
export { Authenticator } from './contracts/authenticator.js';
export type { AuthRequest, AuthResult } from './contracts/authenticator.js';
export { peerInfo } from './contracts/peer-info.js';
export type { PeerInfo } from './contracts/peer-info.js';
export { memoryModule } from './di/memory.module.js';
export { DefaultAuthenticator } from './contracts/authenticator.js';
export { ensureStoreUser } from './backends/store-authenticator.js';

// SASL: one engine for SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE; EXTERNAL from client certificates.
export { SaslMechanism, SaslMalformedError, availableMechanisms, findMechanism, saslSessionInfo } from './protocol/sasl/sasl-mechanism.js';
export type { SaslServer, SaslStep, SaslSessionInfo, SaslCredentials } from './protocol/sasl/sasl-mechanism.js';
export { runSaslExchange, runSaslLogin, sendSuccessData, MAX_SASL_STEPS } from './protocol/sasl/sasl-engine.js';
export type { SaslOutcome, ContinuationResult, ChallengeFrame } from './protocol/sasl/sasl-engine.js';
export { PLAIN } from './protocol/sasl/plain.js';
export { LOGIN } from './protocol/sasl/login.js';
export { CRAM_MD5 } from './protocol/sasl/cram-md5.js';
export { SCRAM_SHA_256, scramSha256, SCRAM_ITERATIONS, type ScramOptions } from './protocol/sasl/scram-sha-256.js';
export { deriveScramKeys, encodeScramKeys, decodeScramKeys, type ScramKeys, type ScramParameters } from './protocol/sasl/scram-keys.js';
export { ExternalMechanism, hasValidatedClientCertificate } from './protocol/sasl/external.js';
export { CertificateLoginMapper } from './contracts/certificate-login.js';
export {
  CommonNameLoginMapper,
  EmailLoginMapper,
  FingerprintLoginMapper,
  certificateLoginMapper,
  parseFingerprintTable,
  normalizeFingerprint,
  subjectCommonNames,
  subjectEmailAddresses,
} from './backends/certificate-login-mappers.js';
export type { CertificateLoginOption, FingerprintEntry } from './backends/certificate-login-mappers.js';
export { saslModule, withSasl } from './di/sasl.module.js';
export { maildirModule } from './di/maildir.module.js';
export { postgresModule } from './di/postgres.module.js';

// The whole server, the CLI's assembly, and the embedded test double.
export { createMailServerContainer, MailServer, storeModule, isListenerEnabled, LISTENER_NAMES, DEFAULT_PORTS } from './di/mail-server.js';
export { MAIL_LISTENER_NAMES } from './di/mail-server.js';

// Fault injection and the HTTP API / web inbox.
export { Chaos, ChaosToken, ChaosConfigError, parseChaosConfig, MAX_CHAOS_DELAY_MS, MAX_CHAOS_RULES } from './chaos/chaos.js';
export type { ChaosConfig, ChaosRule, ChaosRuleState, ChaosProtocol, ChaosActionName } from './chaos/chaos.js';
export { FaultInjector, FAULT_STAGES } from './protocol/faults.js';
export type { FaultAction, FaultStage } from './protocol/faults.js';
export { chaosModule } from './di/chaos.module.js';
export { httpModule } from './di/http.module.js';
export { HttpListener } from './http/http-listener.js';
export type { HttpListenerDeps } from './http/http-listener.js';
export { HTTP_PORT } from './http/http-options.js';
export type { HttpOptions } from './http/http-options.js';
export type { MailServerConfig, ListenerName, ReadyListener } from './di/mail-server.js';
export { startMailServer } from './test-double/start-mail-server.js';
export type { MailServerOptions, RunningMailServer, ReceivedMessage } from './test-double/start-mail-server.js';
export { MessageCatalog, describeMessage } from './test-double/received-message.js';
export type { MailAddress, ReceivedAttachment } from './test-double/received-message.js';
export { allMessages, purgeMessages } from './test-double/store-queries.js';
export type { StoredMessageRow } from './test-double/store-queries.js';
export { parseUserSpec } from './test-double/user-spec.js';
export type { UserSpec } from './test-double/user-spec.js';

// Hardening and operations (issue 14): connection caps, login throttling, metrics.
export { ConnectionLimits, ConnectionLimitsToken, listenerLimits, MAX_CONNECTIONS_PER_ADDRESS, MAX_CONNECTIONS_PER_ADDRESS_TOTAL, MAX_CONNECTIONS_TOTAL, PRE_AUTH_TIMEOUT_MS, COMMAND_TIMEOUT_MS } from './core/connection-limits.js';
export type { ServerLimits, ConnectionLimitsOptions, RefusalReason } from './core/connection-limits.js';
export { AuthThrottle, AuthThrottleToken } from './protocol/auth-throttle.js';
export type { AuthThrottleOptions } from './protocol/auth-throttle.js';
export type { SessionMetrics } from './protocol/session-metrics.js';
export { PosternMetrics, PosternMetricsToken, MetricsRegistry, instrumentStore } from './metrics/postern-metrics.js';
export { MetricsServer } from './metrics/metrics-server.js';
export { MetricsSource } from './metrics/cluster-metrics.js';
