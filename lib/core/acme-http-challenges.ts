/** Where an ACME CA fetches an HTTP-01 key authorization (RFC 8555 §8.3): `/.well-known/acme-challenge/<token>`. */
export const ACME_HTTP_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/**
 * Pending ACME HTTP-01 challenges (RFC 8555 §8.3): token → key authorization. Filled and emptied by the ACME
 * certificate manager (through the `ServerSecurity` that holds it, or a cluster worker's copy); read by the HTTP
 * listener, which answers `GET /.well-known/acme-challenge/<token>` with the key authorization (and 404 otherwise).
 */
export class AcmeHttpChallenges {
  private readonly tokens = new Map<string, string>();

  /** Starts answering `token` with `keyAuthorization`. */
  add(token: string, keyAuthorization: string): void {
    this.tokens.set(token, keyAuthorization);
  }

  /** Stops answering `token`. */
  remove(token: string): void {
    this.tokens.delete(token);
  }

  /** The body for a request path, or undefined when it names no pending challenge (answer 404). */
  response(path: string): string | undefined {
    return path.startsWith(ACME_HTTP_CHALLENGE_PREFIX) ? this.tokens.get(path.slice(ACME_HTTP_CHALLENGE_PREFIX.length)) : undefined;
  }
}
