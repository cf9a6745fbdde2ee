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
export { ServerSecurity, CertificateError, HANDSHAKE_TIMEOUT_MS, splitPemList } from './core/server-security.js';
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
export type { TlsHandshakeFailure } from './core/tls-errors.js';
export { generateDevCertificates, writeDevCertificates } from './core/dev-certificates.js';

// Engine: line framing, command tables, errors, SASL.
export { LineReader } from './protocol/line-reader.js';
export type { LineResult, LineReaderOptions } from './protocol/line-reader.js';
export { dispatch } from './protocol/command-table.js';
export type { CommandSpec, CommandTable, DispatchTarget, GuardFailure } from './protocol/command-table.js';
export { ReplyError, ProtocolSyntaxError } from './protocol/reply-error.js';
export { TextSession } from './protocol/text-session.js';
export type { SessionLimits } from './protocol/text-session.js';
export * as limits from './protocol/limits.js';

// Contracts.
export { MailStore, MailStoreError, MailStoreOptions } from './contracts/mail-store.js';
export type { UserMailboxes, StoredMessage, MailboxInfo, MailboxEvent, UserDirectory } from './contracts/mail-store.js';

// Logging and assembly.
export { Logger, createLogger } from './log/logger.js';
export type { LoggerOptions } from './log/logger.js';
export { createContainer } from './di/create-container.js';
export { coreModule, TcpServerFactory, ServerSecurityToken } from './di/core.module.js';
export { PosternConfig } from './di/config.js';
export type { ListenerConfig } from './di/config.js';
export { Listener } from './di/listener.js';
