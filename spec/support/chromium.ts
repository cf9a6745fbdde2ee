/** Debian's Chromium as the specs drive it (playwright-core, never a downloaded browser). */

/** The browser binary (`POSTERN_CHROMIUM` overrides; `.ci/run` installs Debian's `chromium`). */
export const CHROMIUM = process.env.POSTERN_CHROMIUM ?? '/usr/bin/chromium';

/** Headless, no sandbox (CI runs as root), and nothing that reaches the network by itself. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * How long a launch may take. The first launch on a fresh machine builds Chromium's and fontconfig's caches, and one
 * launch under load took over 30 s here (stop 30: a mutation run beside the CI run); a later one takes about a second.
 */
export const CHROMIUM_LAUNCH_TIMEOUT_MS = 120_000;
