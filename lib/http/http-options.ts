/** The `http` section: the HTTP API and web inbox listener (off unless `http` is among the listeners started). */
export interface HttpOptions {
  /** Bind address (default: the global `host`). */
  host?: string;
  /** Port (default 8025 plus `--port-offset`; 0 in the test double). */
  port?: number;
  /** `USER:PASSWORD`: require HTTP Basic authentication (RFC 7617) on everything but `/healthz`. */
  auth?: string;
  /** An origin allowed to call the API from a browser (CORS); none by default. `*` allows any. */
  cors?: string;
}

/** Default port of the HTTP listener: Mailpit's and MailHog's web port, so existing set-ups find it. */
export const HTTP_PORT = 8025;
