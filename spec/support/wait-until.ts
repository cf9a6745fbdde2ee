/**
 * Yields to the event loop (one `setImmediate` turn at a time) until `done()` is true, for at most `ms` of wall time
 * (`performance.now`, which tests that stub `Date.now` leave alone); then throws, naming `what`. A bound in time, not
 * in turns: on a loaded CI machine a file-system or socket step can take more turns than a quiet one needs.
 */
export async function waitUntil(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!done()) {
    if (performance.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
