// The playground end to end in Debian's Chromium (playwright-core): model card, an image chosen and one
// dropped, a streamed answer equal to the API's, and the answer's boxes and mask drawn over the image.
// VISTUNE_SCREENSHOTS=1 writes docs/playground*.png.
import { readFileSync } from 'node:fs';
import type { AnswerAnnotator } from '@vistune/core';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VisionLanguageModel } from '../api/model.js';
import { chromiumArgs, findChromium } from './browser.js';
import {
  type FixtureServer,
  fixtureDir as fixture,
  playgroundDir as playground,
  startFixtureServer,
} from './testing.js';

const docs = new URL('../../../../docs/', import.meta.url).pathname;
const browserFound = findChromium();
const built = (() => {
  try {
    return readFileSync(`${playground}index.html`, 'utf8').includes('<script');
  } catch {
    return false;
  }
})();
const skipReason =
  'reason' in browserFound
    ? browserFound.reason
    : built
      ? undefined
      : `${playground}index.html missing: build the CLI (pnpm --filter vistune build)`;

/** Stands in for a grounding head: a fixed box and a mask in the image's pixels (32×32). */
const stubHead: AnswerAnnotator = {
  annotate: () => ({
    json: {
      boxes: [[3, 4, 20, 26]],
      // Column-major RLE: columns 22..29 fully set.
      masks: [{ size: [32, 32], counts: [22 * 32, 8 * 32, 2 * 32] }],
    },
    lines: [],
  }),
};

let vlm: VisionLanguageModel;
let served: FixtureServer | undefined;
let url: string;
let browser: Browser;

beforeAll(async () => {
  if (skipReason) return;
  served = await startFixtureServer({ annotators: [stubHead], playgroundDir: playground });
  ({ vlm, url } = served);
  browser = await chromium.launch({
    executablePath: (browserFound as { path: string }).path,
    args: chromiumArgs,
  });
});
afterAll(async () => {
  await browser?.close();
  await served?.close();
});

async function answer(page: Page, question: string): Promise<string> {
  const replies = page.locator('#chat li.assistant[data-done], #chat li.error');
  const before = await replies.count();
  await page.fill('#prompt', question);
  await page.click('#send');
  const reply = replies.nth(before);
  await reply.waitFor({ timeout: 20_000 });
  const [kind, text] = await reply.evaluate((li) => [li.className, li.firstChild?.textContent ?? '']);
  if (kind === 'error') throw new Error(`the playground shows an error: ${text}`);
  return text;
}

/** The API's answer to the same one-image question, for comparison. */
async function apiAnswer(imageFile: string, question: string, maxTokens: number): Promise<string> {
  const png = `data:image/png;base64,${readFileSync(`${fixture}${imageFile}`).toString('base64')}`;
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: png } },
            { type: 'text', text: question },
          ],
        },
      ],
      temperature: 0,
      max_tokens: maxTokens,
    }),
  });
  return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
}

describe.skipIf(skipReason)(`playground in Chromium${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('shows the model card, streams answers about a chosen and a dropped image, and draws boxes and masks', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.locator('#card-table[data-ready]').waitFor();
    const card = await page.locator('#card-table').textContent();
    expect(card).toMatch(/family\s*llava/);
    expect(card).toMatch(/modality image\s*image: clip/);
    expect(card).toContain(`${(vlm.model.numParameters() / 1e6).toFixed(2)} M`);

    await page.setInputFiles('#file', `${fixture}image_0.png`);
    await page.locator('#drop.has-image').waitFor();
    await page.fill('#max-tokens', '8');
    const first = await answer(page, 'What is in the image?');
    expect(first).toBe(await apiAnswer('image_0.png', 'What is in the image?', 8));
    expect(first.length).toBeGreaterThan(0);
    expect(await page.locator('#canvas').getAttribute('data-annotations')).toBe('2');
    // Canvas pixels: the box's left edge is drawn in red, the mask tints columns 22..29 blue.
    const [edge, masked, plain] = await page.locator('#canvas').evaluate((c: HTMLCanvasElement) => {
      const ctx = c.getContext('2d') as CanvasRenderingContext2D;
      const scale = c.width / 32;
      const at = (x: number, y: number) => [
        ...ctx.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data,
      ];
      return [at(3, 15), at(25.5, 15), at(12, 15)];
    });
    expect(edge.slice(0, 3)).toEqual([0xe8, 0x41, 0x2c]);
    expect(masked[2]).toBeGreaterThan(masked[0]);
    expect(plain).not.toEqual(edge);
    if (process.env.VISTUNE_SCREENSHOTS) await page.screenshot({ path: `${docs}playground.png` });

    // A dropped file replaces the image and goes with the next message of the same conversation.
    const bytes = [...readFileSync(`${fixture}image_3.png`)];
    await page.evaluate(async (data) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(data)], 'dropped.png', { type: 'image/png' }));
      document
        .getElementById('drop')
        ?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
    }, bytes);
    await page.locator('#attached', { hasText: 'dropped.png (32×32)' }).waitFor();
    const second = await answer(page, 'And this one?');
    expect(second.length).toBeGreaterThan(0);
    expect(await page.locator('#chat li.user img').count()).toBe(2);
    if (process.env.VISTUNE_SCREENSHOTS)
      await page.screenshot({ path: `${docs}playground-conversation.png` });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a server error in the conversation (an answer longer than the context)', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.locator('#card-table[data-ready]').waitFor();
    await page.fill('#max-tokens', '100000');
    await page.fill('#prompt', 'Hello');
    await page.click('#send');
    await expect(page.locator('#chat li.error').textContent()).resolves.toMatch(
      /exceeds the model's context of 512/,
    );
    await page.close();
  });
});
