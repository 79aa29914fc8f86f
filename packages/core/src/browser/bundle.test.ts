// The built browser entries import no Node module: only tfjs, the pure-JS dependencies and other vistune
// browser entries (tools/tsup-browser.ts replaced the rest).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const packages = ['core', 'encoders', 'adapters'];
const bundle = (pkg: string) => new URL(`../../../${pkg}/dist/browser.js`, import.meta.url).pathname;
const missing = packages.filter((p) => !existsSync(bundle(p)));
const allowed =
  /^(@tensorflow\/tfjs-(core|backend-cpu|backend-wasm)(\/.*)?|@huggingface\/(jinja|tokenizers)|zod|yaml|@vistune\/core\/browser)$/;

describe.skipIf(missing.length > 0)(
  `browser bundles${missing.length ? ` (skipped: build ${missing.map((p) => `@vistune/${p}`).join(', ')} first)` : ''}`,
  () => {
    it.each(packages)('@vistune/%s dist/browser.js imports nothing Node-only', (pkg) => {
      const code = readFileSync(bundle(pkg), 'utf8');
      const specifiers = [...code.matchAll(/\bfrom\s+"([^"\s]+)"|\bimport\(\s*"([^"\s]+)"\s*\)/g)].map(
        (m) => m[1] ?? m[2],
      );
      expect(specifiers.length).toBeGreaterThan(0);
      expect(specifiers.filter((s) => !allowed.test(s))).toEqual([]);
      expect(code).not.toMatch(/require\(["']node:/);
    });
  },
);
