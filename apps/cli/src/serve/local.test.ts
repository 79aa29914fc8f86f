// vistune in the page (local.html), in Debian's Chromium on the wasm backend: the served fixture folder is
// fetched and loaded client-side, its greedy answer equals the PyTorch reference, LoRA steps lower the loss,
// and the exported PEFT adapter, loaded in Node onto the same model, gives the page's post-training answer.

import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLoraAdapter } from '@vistune/core';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VisionLanguageModel } from '../api/model.js';
import { chromiumArgs, findChromium } from './browser.js';
import {
  type FixtureServer,
  fixtureDir as fixture,
  playgroundDir as playground,
  startFixtureServer,
} from './testing.js';

const browserFound = findChromium();
const skipReason =
  'reason' in browserFound
    ? browserFound.reason
    : existsSync(`${playground}local.html`)
      ? undefined
      : `${playground}local.html missing: build the CLI (pnpm --filter vistune build)`;

interface FixtureCase {
  question: string;
  images: string[];
  expected: { greedy_ids: number[] };
}
const cases = (JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;
const imageCase = cases.find((c) => c.images.length === 1) as FixtureCase;

interface PageState {
  ready: boolean;
  answerIds: number[];
  losses: number[];
  exported: boolean;
}

let vlm: VisionLanguageModel;
let served: FixtureServer | undefined;
let url: string;
let browser: Browser;
let downloads: string;

beforeAll(async () => {
  if (skipReason) return;
  served = await startFixtureServer({ serveModelFiles: true, playgroundDir: playground });
  ({ vlm, url } = served);
  browser = await chromium.launch({
    executablePath: (browserFound as { path: string }).path,
    args: chromiumArgs,
  });
  downloads = await mkdtemp(join(tmpdir(), 'vistune-adapter-'));
});
afterAll(async () => {
  await browser?.close();
  await served?.close();
  if (downloads) await rm(downloads, { recursive: true, force: true });
});

describe.skipIf(skipReason)(`vistune in the browser${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('answers like the reference, takes LoRA steps and exports an adapter Node loads to the same answer', async () => {
    const page = await browser.newPage({ acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const state = () => page.evaluate(() => (window as unknown as { vistune: PageState }).vistune);
    /** Clicks Answer and waits for the page's answer ids. */
    const answer = async () => {
      await page.evaluate(() => {
        (window as unknown as { vistune: PageState }).vistune.answerIds = [];
      });
      await page.click('#answer-button');
      await page.waitForFunction(
        () => (window as unknown as { vistune: PageState }).vistune.answerIds.length > 0,
        null,
        {
          timeout: 30_000,
        },
      );
      return (await state()).answerIds;
    };
    await page.goto(`${url}/local.html?backend=wasm`);
    page.on('console', (m) => {
      // fetchModelFolder probes optional files (added_tokens.json …): their 404s are expected.
      if (m.type() === 'error' && !m.text().includes('404')) errors.push(m.text());
    });
    await page.waitForFunction(
      () =>
        (window as unknown as { vistune?: PageState }).vistune?.ready ||
        document.getElementById('status')?.textContent?.startsWith('error'),
      null,
      { timeout: 60_000 },
    );
    expect({ status: await page.locator('#status').textContent(), errors }).toMatchObject({
      status: expect.stringMatching(/loaded/),
    });
    expect(await page.locator('#backend').textContent()).toMatch(/^wasm/);

    await page.setInputFiles('#file', `${fixture}${imageCase.images[0]}`);
    await page.locator('#drop.has-image').waitFor();
    await page.fill('#question', imageCase.question);
    await page.fill('#max-tokens', String(imageCase.expected.greedy_ids.length));
    expect(await answer()).toEqual(imageCase.expected.greedy_ids);

    await page.fill('#target', 'a small test picture');
    await page.fill('#steps', '6');
    await page.click('#tune-button');
    await page.waitForFunction(() => (window as unknown as { vistune: PageState }).vistune.exported, null, {
      timeout: 60_000,
    });
    const { losses } = await state();
    expect(losses).toHaveLength(6);
    expect(losses[5]).toBeLessThan(losses[0] * 0.8);

    for (const link of ['#download-weights', '#download-config']) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
      await download.saveAs(join(downloads, download.suggestedFilename()));
    }
    const config = JSON.parse(await readFile(join(downloads, 'adapter_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    // The CLIP tower has q_proj / v_proj too, so PEFT's short names would over-select: full names.
    expect(config).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      target_modules: [0, 1].flatMap((l) =>
        ['q_proj', 'v_proj'].map((p) => `language_model.model.layers.${l}.self_attn.${p}`),
      ),
    });

    const tuned = await answer();
    expect(tuned).not.toEqual(imageCase.expected.greedy_ids);

    const family = vlm.model.family;
    await loadLoraAdapter(vlm.model, downloads, { checkpointName: (n) => family?.checkpointName(n) ?? n });
    const inNode = await vlm.generate({
      messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: imageCase.question }] }],
      media: { image: [`${fixture}${imageCase.images[0]}`] },
      maxNewTokens: imageCase.expected.greedy_ids.length,
      eosTokenIds: [],
    });
    expect(inNode.ids).toEqual(tuned);
    if (process.env.VISTUNE_SCREENSHOTS)
      await page.screenshot({ path: new URL('../../../../docs/browser-lora.png', import.meta.url).pathname });
    expect(errors).toEqual([]);
    await page.close();
  });
});
