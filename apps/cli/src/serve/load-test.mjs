#!/usr/bin/env node
// Bounded load test of `vistune serve` on loopback (not part of the test suite; docs/serving.md records its
// output). Starts the server on the fixture model (or uses --url), sends N concurrent chat requests with
// images — half streamed — plus one client that reads its stream slowly and one that hangs up after the
// first token, then reports latency percentiles, tokens/s, lost requests and answers that differ from the
// same request sent alone.
//   node apps/cli/src/serve/load-test.mjs [--requests 100] [--max-tokens 32] [--url http://127.0.0.1:8000]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '100' },
    'max-tokens': { type: 'string', default: '32' },
    'max-batch': { type: 'string', default: '8' },
    url: { type: 'string' },
    model: {
      type: 'string',
      default: new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname,
    },
    backend: { type: 'string' },
  },
});
const total = Number(args.requests);
const maxTokens = Number(args['max-tokens']);
const images = [0, 1, 2, 3].map(
  (i) => `data:image/png;base64,${readFileSync(`${args.model}/image_${i}.png`).toString('base64')}`,
);
const questions = [
  'Describe the image.',
  'What pattern repeats here?',
  'What time of day is it?',
  'Compare the halves.',
];

async function startServer() {
  const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
  const backend = args.backend ? ['--backend', args.backend] : [];
  const child = spawn(
    process.execPath,
    [
      bin,
      ...backend,
      'serve',
      '--model',
      args.model,
      '--port',
      '0',
      '--quiet',
      '--no-playground',
      '--max-batch',
      args['max-batch'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, VISTUNE_NO_DISCOVERY: '1' } },
  );
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  return { url, child };
}

const body = (i, stream) => ({
  messages: [
    {
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: images[i % 4] } },
        { type: 'text', text: questions[i % 4] },
      ],
    },
  ],
  max_tokens: maxTokens,
  temperature: 0,
  ignore_eos: true,
  stream,
  ...(stream ? { stream_options: { include_usage: true } } : {}),
});

/** One request; resolves with its latency, time to first token (streams), tokens and text. */
async function chat(url, i, stream) {
  const start = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body(i, stream)),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  if (!stream) {
    const json = await res.json();
    return {
      ms: performance.now() - start,
      tokens: json.usage.completion_tokens,
      text: json.choices[0].message.content,
    };
  }
  let ttft;
  let text = '';
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const event = JSON.parse(line.slice(6));
      if (event.error) throw new Error(event.error.message);
      const delta = event.choices[0]?.delta?.content;
      if (delta) {
        ttft ??= performance.now() - start;
        text += delta;
      }
      if (event.usage) tokens = event.usage.completion_tokens;
    }
  }
  return { ms: performance.now() - start, ttft, tokens, text };
}

/** A client that reads one SSE chunk every 250 ms (its socket buffer fills while the server keeps going). */
function slowClient(url, i) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = httpRequest(
      `${url}/v1/chat/completions`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.pause();
        const timer = setInterval(() => res.read(), 250);
        res.on('readable', () => {});
        res.on('end', () => {
          clearInterval(timer);
          resolve(performance.now() - start);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ ...body(i, true), max_tokens: maxTokens * 4 }));
  });
}

/** A client that hangs up after its first token. */
async function abandoningClient(url, i) {
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body(i, true), max_tokens: 400 }),
    signal: abort.signal,
  });
  const reader = res.body.getReader();
  await reader.read();
  abort.abort();
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const f = (ms) => `${(ms / 1000).toFixed(2)} s`;

const server = args.url ? { url: args.url } : await startServer();
try {
  // The answer of each (image, question) pair alone, to check batched answers against.
  const alone = [];
  for (let i = 0; i < 4; i++) alone.push((await chat(server.url, i, false)).text);
  const slow = slowClient(server.url, 0);
  const abandoned = abandoningClient(server.url, 1);
  const wall = performance.now();
  const settled = await Promise.allSettled(
    Array.from({ length: total }, (_, i) => chat(server.url, i, i % 2 === 1)),
  );
  const wallMs = performance.now() - wall;
  await abandoned;
  const ok = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const failed = settled.filter((s) => s.status === 'rejected').map((s) => s.reason.message);
  const differ = settled.filter((s, i) => s.status === 'fulfilled' && s.value.text !== alone[i % 4]).length;
  const tokens = ok.reduce((n, r) => n + r.tokens, 0);
  const slowMs = await slow;
  const health = await (await fetch(`${server.url}/health`)).json();
  const ttfts = ok.filter((r) => r.ttft !== undefined).map((r) => r.ttft);
  const report = {
    requests: total,
    completed: ok.length,
    lost: total - ok.length,
    errors: [...new Set(failed)].slice(0, 3),
    answersDifferingFromAlone: differ,
    latency: {
      p50: f(
        pct(
          ok.map((r) => r.ms),
          50,
        ),
      ),
      p95: f(
        pct(
          ok.map((r) => r.ms),
          95,
        ),
      ),
      max: f(Math.max(...ok.map((r) => r.ms))),
    },
    timeToFirstToken: { p50: f(pct(ttfts, 50)), p95: f(pct(ttfts, 95)) },
    wall: f(wallMs),
    completionTokens: tokens,
    tokensPerSecond: Number((tokens / (wallMs / 1000)).toFixed(1)),
    requestsPerSecond: Number((ok.length / (wallMs / 1000)).toFixed(2)),
    slowClient: f(slowMs),
    server: health,
  };
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.lost || differ ? 1 : 0;
} finally {
  server.child?.kill('SIGTERM');
}
