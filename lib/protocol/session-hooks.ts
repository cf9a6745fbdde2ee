import type { CloseReason } from '../core/connection.js';

/**
 * Runs `call` on every hook in order and stops at the first one that throws (its error propagates: the protocol
 * turns a refusal into its reply). Hooks are many-of extension points (STYLE §5): a failing one is never skipped.
 */
export async function runHooks<H>(hooks: readonly H[] | undefined, call: (hook: H) => Promise<void> | undefined): Promise<void> {
  for (const h of hooks ?? []) await call(h);
}

/** What {@link admitSession} needs of a session. */
interface Admittable {
  send(line: string): void;
  end(reason: CloseReason): Promise<void>;
  readonly log: { warn(message: string, meta?: Record<string, unknown>): void; error(message: string, meta?: Record<string, unknown>): void };
}

/**
 * Runs connection-level hooks (`onConnect`, `onSecure`): a refusal goes out as the line `refusal(err)` gives (undefined: not a refusal), a bug as `bug`, and the
 * session ends. Resolves false when it ended. Used by IMAP and POP3, which differ only in the lines they send (SMTP has its own `admit`).
 */
export async function admitSession(
  session: Admittable,
  step: () => Promise<void>,
  refusal: (err: unknown) => string | undefined,
  bug: string,
): Promise<boolean> {
  try {
    await step();
    return true;
  } catch (err) {
    const line = refusal(err);
    if (line !== undefined) {
      session.log.warn('session refused by policy', {});
      session.send(line);
    } else {
      session.log.error('session hook failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      session.send(bug);
    }
    await session.end('refused');
    return false;
  }
}
