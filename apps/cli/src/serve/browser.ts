// Chromium for the browser tests: Debian's package (or CHROMIUM_PATH) driven by playwright-core. Where it is not
// installed, tests skip with the reason instead of downloading a browser.
import { existsSync } from 'node:fs';

const candidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser executable, or why there is none. */
export function findChromium(): { path: string } | { reason: string } {
  const given = process.env.CHROMIUM_PATH;
  if (given) return existsSync(given) ? { path: given } : { reason: `CHROMIUM_PATH=${given} does not exist` };
  const found = candidates.find((p) => existsSync(p));
  return found
    ? { path: found }
    : { reason: `no Chromium at ${candidates.join(', ')} (apt-get install chromium, or set CHROMIUM_PATH)` };
}

/** Launch flags: the sandbox needs user namespaces, which containers running as root rarely grant. */
export const chromiumArgs = ['--no-sandbox', '--disable-dev-shm-usage'];
