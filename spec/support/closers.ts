/**
 * Things a test opened and must close: push a closer as each is opened, and after each test of the calling `describe`
 * they are run in reverse order (the last opened is closed first), each awaited.
 */
export function closeAfterEach(): Array<() => unknown> {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  return closers;
}
