/**
 * Recognising an HTTP request sent to a mail port: the cross-protocol attacks of ALPACA (Brinkmann et al., USENIX
 * Security 2021) make a browser send one, either in plaintext (a form posted to the SMTP port, whose body carries SMTP
 * commands) or over TLS to an implicit-TLS port that shares the web server's certificate. A mail session that sees
 * one closes at once, as Postfix does for `GET`, `POST` and `CONNECT` (`smtpd_forbidden_commands`), so that nothing
 * the request carries after its first line is ever run or echoed.
 */

/** The request methods of HTTP/1.x (RFC 9110 §9, RFC 5789), upper-case. None is a verb of SMTP, LMTP or POP3. */
const HTTP_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** True when `word` (the first word of a command line, already upper-cased) is an HTTP request method. */
export function isHttpMethod(word: string): boolean {
  return HTTP_METHODS.has(word);
}
