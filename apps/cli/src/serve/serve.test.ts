// vistune serve against the official `openai` client on 127.0.0.1: fixture parity at temperature 0 (JSON and
// streamed), batching of concurrent requests, validation errors, limits, auth, cancellation and SIGTERM.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type VisionLanguageModel } from '../api/model.js';
import type { ServeOptions, VistuneServer } from './server.js';
import { fixtureDir as fixture, startFixtureServer } from './testing.js';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;

interface FixtureCase {
  question: string;
  images: string[];
  input_ids: number[];
  expected: { greedy_ids: number[]; greedy_text: string };
}
const cases = (JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;
const imageCases = cases.filter((c) => c.images.length === 1);
const textCase = cases.find((c) => c.images.length === 0)!;

const dataUrl = (file: string) =>
  `data:image/png;base64,${readFileSync(`${fixture}${file}`).toString('base64')}`;

function messages(c: FixtureCase, url = dataUrl): OpenAI.ChatCompletionMessageParam[] {
  return [
    {
      role: 'user',
      content: [
        ...c.images.map((i) => ({ type: 'image_url' as const, image_url: { url: url(i) } })),
        { type: 'text' as const, text: c.question },
      ],
    },
  ];
}

/** Fixture decoding: greedy, the reference's length, no EOS stop (vLLM's ignore_eos). */
const greedy = (c: FixtureCase) =>
  ({
    model: 'tiny-llava-hf',
    messages: messages(c),
    temperature: 0,
    max_tokens: c.expected.greedy_ids.length,
    ignore_eos: true,
  }) as OpenAI.ChatCompletionCreateParamsNonStreaming;
type ApiErr = InstanceType<typeof OpenAI.APIError>;

interface VistuneFields {
  vistune: { token_ids: number[]; annotations: unknown[] };
}

let vlm: VisionLanguageModel;
const servers: VistuneServer[] = [];

async function start(extra: Partial<ServeOptions> = {}): Promise<{ server: VistuneServer; url: string }> {
  const served = await startFixtureServer({ vlm, ...extra });
  servers.push(served.server);
  return served;
}

const client = (url: string, apiKey = 'none') => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

let main: { server: VistuneServer; url: string };
beforeAll(async () => {
  vlm = await loadModel(fixture, { discover: false });
  main = await start();
});
afterAll(async () => {
  for (const s of servers) await s.close(0);
  vlm.dispose();
});

describe('vistune serve: OpenAI chat completions', () => {
  it('answers an image case and a text case exactly as the PyTorch reference at temperature 0', async () => {
    const openai = client(main.url);
    for (const c of [imageCases[0], textCase]) {
      const res = (await openai.chat.completions.create(greedy(c))) as OpenAI.ChatCompletion & VistuneFields;
      expect(res.vistune.token_ids).toEqual(c.expected.greedy_ids);
      expect(res.choices[0].message.content).toBe(c.expected.greedy_text);
      expect(res.choices[0].finish_reason).toBe('length');
      expect(res.usage).toEqual({
        prompt_tokens: c.input_ids.length,
        completion_tokens: c.expected.greedy_ids.length,
        total_tokens: c.input_ids.length + c.expected.greedy_ids.length,
      });
    }
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny-llava-hf']);
  });

  it('streams the same answer as server-sent events, with a usage chunk', async () => {
    const c = imageCases[1];
    const stream = await client(main.url).chat.completions.create({
      ...greedy(c),
      stream: true as const,
      stream_options: { include_usage: true },
    });
    let text = '';
    const finish: (string | null)[] = [];
    let usageSeen: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        if (choice.finish_reason) finish.push(choice.finish_reason);
      }
      if (chunk.usage) usageSeen = chunk.usage;
    }
    expect(text).toBe(c.expected.greedy_text);
    expect(finish).toEqual(['length']);
    expect(chunks).toBeGreaterThan(3); // token by token, not one blob
    expect(usageSeen?.completion_tokens).toBe(c.expected.greedy_ids.length);
  });

  it('batches concurrent requests into one forward, each row still matching its reference', async () => {
    const before = main.server.scheduler.stats.batches;
    const all = [...imageCases, textCase];
    const results = (await Promise.all(
      all.map((c) => client(main.url).chat.completions.create(greedy(c))),
    )) as (OpenAI.ChatCompletion & VistuneFields)[];
    results.forEach((res, i) => {
      expect(res.vistune.token_ids).toEqual(all[i].expected.greedy_ids);
    });
    expect(main.server.scheduler.stats.batches - before).toBeLessThan(all.length);
    expect(main.server.scheduler.stats.largestBatch).toBeGreaterThan(1);
  });

  it('takes a multi-turn conversation with plain string contents (rendered as text parts)', async () => {
    const c = imageCases[0];
    const res = await client(main.url).chat.completions.create({
      ...greedy(c),
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Hi.' },
        ...messages(c),
      ],
    });
    expect(res.usage?.prompt_tokens).toBeGreaterThan(c.input_ids.length);
    expect(res.choices[0].message.content?.length).toBeGreaterThan(0);
  });

  it('cuts the answer before a stop sequence and reports finish_reason stop', async () => {
    const c = imageCases[0];
    const stopAt = c.expected.greedy_text.indexOf('Other');
    const res = await client(main.url).chat.completions.create({
      ...greedy(c),
      stop: ['Other'],
    });
    expect(res.choices[0].message.content).toBe(c.expected.greedy_text.slice(0, stopAt));
    expect(res.choices[0].finish_reason).toBe('stop');
  });

  it('refuses bad sampling values with the CLI flag message, naming the field', async () => {
    const openai = client(main.url);
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ temperature: -1 }, 'temperature', /expected a number ≥ 0, got "-1"/],
      [{ top_p: 1.5 }, 'top_p', /expected a probability in \(0, 1\]/],
      [{ max_tokens: 0 }, 'max_tokens', /expected a positive integer/],
      [{ top_k: 2.5 }, 'top_k', /expected a positive integer/],
      [{ n: 2 }, 'n', /only n = 1/],
      [{ max_tokens: 100_000 }, 'max_tokens', /exceeds the model's context of 512/],
    ];
    for (const [fields, param, message] of bad) {
      const err = await openai.chat.completions
        .create({ ...greedy(textCase), ...fields })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as ApiErr).param).toBe(param);
      expect((err as Error).message).toMatch(message);
    }
    const wrongModel = await openai.chat.completions
      .create({ ...greedy(textCase), model: 'gpt-4o' })
      .catch((e: unknown) => e);
    expect(wrongModel).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('takes media only as data URLs or file URLs under --allow-dir, within the size limits', async () => {
    const openai = client(main.url);
    const ask = (url: (f: string) => string) =>
      openai.chat.completions
        .create({ ...greedy(imageCases[0]), messages: messages(imageCases[0], url) })
        .catch((e: unknown) => e as ApiErr);
    const remote = await ask(() => 'https://example.com/cat.png');
    expect((remote as ApiErr).status).toBe(400);
    expect((remote as Error).message).toMatch(/does not fetch remote URLs/);
    const file = await ask((f) => pathToFileURL(`${fixture}${f}`).href);
    expect((file as ApiErr).status).toBe(403);
    expect((file as Error).message).toMatch(/--allow-dir/);
    const allowed = await start({
      media: { maxItemBytes: 1 << 20, maxItems: 4, allowDirs: [fixture.replace(/\/$/, '')] },
    });
    const viaFile = (await client(allowed.url).chat.completions.create({
      ...greedy(imageCases[0]),
      messages: messages(imageCases[0], (f) => pathToFileURL(`${fixture}${f}`).href),
    })) as OpenAI.ChatCompletion & VistuneFields;
    expect(viaFile.vistune.token_ids).toEqual(imageCases[0].expected.greedy_ids);
    const small = await start({
      media: { maxItemBytes: 200, maxItems: 1, allowDirs: [] },
      bodyLimit: 64 << 10,
    });
    const tooBig = await client(small.url)
      .chat.completions.create(greedy(imageCases[0]))
      .catch((e: unknown) => e as ApiErr);
    expect((tooBig as ApiErr).status).toBe(413);
    expect((tooBig as ApiErr).message).toMatch(/--max-image-bytes/);
    const hugeBody = await client(small.url)
      .chat.completions.create({
        ...greedy(textCase),
        messages: [{ role: 'user', content: 'x'.repeat(100_000) }],
      })
      .catch((e: unknown) => e as ApiErr);
    expect((hugeBody as ApiErr).status).toBe(413);
    const broken = await ask(() => 'data:image/png;base64,AAAA');
    expect((broken as ApiErr).status).toBe(400);
  });

  it('requires the bearer token when an API key is set (health stays open)', async () => {
    const secured = await start({ apiKey: 'sekret' });
    const denied = await client(secured.url, 'wrong')
      .chat.completions.create(greedy(textCase))
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    const ok = await client(secured.url, 'sekret').chat.completions.create(greedy(textCase));
    expect(ok.choices[0].message.content).toBe(textCase.expected.greedy_text);
    expect((await fetch(`${secured.url}/health`)).status).toBe(200);
  });

  it('stops generating for a client that disconnects, and keeps serving others', async () => {
    const { scheduler } = main.server;
    const cancelledBefore = scheduler.stats.cancelled;
    const tokensBefore = scheduler.stats.generatedTokens;
    const abort = new AbortController();
    const stream = await client(main.url).chat.completions.create(
      { ...greedy(textCase), stream: true as const, max_tokens: 400 },
      { signal: abort.signal },
    );
    let seen = 0;
    // The client ends the stream quietly or with APIUserAbortError depending on where the abort lands.
    try {
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content && ++seen === 2) abort.abort();
    } catch (err) {
      expect((err as Error).name).toBe('APIUserAbortError');
    }
    expect(seen).toBe(2);
    await scheduler.idle();
    await new Promise((r) => setTimeout(r, 50));
    expect(scheduler.stats.cancelled).toBe(cancelledBefore + 1);
    expect(scheduler.stats.generatedTokens - tokensBefore).toBeLessThan(400);
    const after = (await client(main.url).chat.completions.create(
      greedy(textCase),
    )) as OpenAI.ChatCompletion & VistuneFields;
    expect(after.vistune.token_ids).toEqual(textCase.expected.greedy_ids);
  });
});

describe('vistune serve (the command)', () => {
  it('finishes the in-flight stream on SIGTERM, refuses new work and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [bin, '--backend', 'cpu', 'serve', '--model', fixture, '--port', '0', '--quiet', '--no-playground'],
      {
        env: { ...process.env, NO_COLOR: '1', VISTUNE_NO_DISCOVERY: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d;
        const m = /on (http:\/\/[^\s]+)/.exec(stdout);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const stream = await client(url).chat.completions.create({
      ...greedy(textCase),
      stream: true as const,
      max_tokens: 120,
    });
    let text = '';
    let finish: string | null = null;
    let signalled = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (!signalled && text) {
        signalled = true;
        child.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 100));
        const refused = await fetch(`${url}/health`).then(
          (r) => r.status,
          () => 'refused',
        );
        expect([503, 'refused']).toContain(refused);
      }
    }
    expect(finish).toBe('length');
    expect(text.startsWith(textCase.expected.greedy_text)).toBe(true);
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: finishing in-flight requests/);
  });
});
