// Hostile or broken tokenizer folders: a chat template that loops for ever or builds huge text stops with an
// error naming its file, within the time budget; a tokenizer.json of the wrong structure is refused by name.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChatTemplate, TemplateLimitError } from './chat-template.js';
import { Tokenizer } from './tokenizer.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-tokenizer-limits-'));
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    await copyFile(join(fixtureDir, name), join(dir, name));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const hello = [{ role: 'user', content: 'hello' }];

function timed<T>(fn: () => T): { value: T | Error; ms: number } {
  const start = performance.now();
  try {
    return { value: fn(), ms: performance.now() - start };
  } catch (error) {
    return { value: error as Error, ms: performance.now() - start };
  }
}

describe('chat template limits', () => {
  it('a template from the model folder that loops too long stops within the time budget, naming its file', async () => {
    const path = join(dir, 'chat_template.jinja');
    // 10^4 × 10^4 iterations: ~20 minutes if unbounded; no single range() is over its cap.
    await writeFile(path, '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}');
    const tokenizer = await Tokenizer.fromDir(dir);
    const { value, ms } = timed(() => tokenizer.applyChatTemplate(hello, { limits: { timeoutMs: 300 } }));
    expect(value).toBeInstanceOf(TemplateLimitError);
    expect((value as Error).message).toBe(
      `Chat template ${path}: rendering took longer than 300 ms: the template loops too long or builds too much text; fix or replace it (chatTemplate option)`,
    );
    expect(ms).toBeLessThan(2000);
    await rm(path);
  });

  it('output over the size cap, and a huge range(), are refused before memory runs out', () => {
    const doubling =
      '{% set s = namespace(t="x") %}{% for i in range(40) %}{% set s.t = s.t + s.t %}{% endfor %}{{ s.t }}';
    const { value, ms } = timed(() => renderChatTemplate(doubling, hello, {}, {}, 'big.jinja'));
    expect((value as Error).message).toMatch(
      /^Chat template big\.jinja: rendering produced more than 1048576 characters/,
    );
    expect(ms).toBeLessThan(2000);
    expect(() => renderChatTemplate('{{ range(10**9) | length }}', hello, {}, {}, 'range.jinja')).toThrow(
      /Chat template range\.jinja: range\(\) of 1000000000 numbers \(more than 10000\)/,
    );
  });

  it('renders ordinary templates exactly as the library does, globals included', () => {
    const messages = [...hello, { role: 'assistant', content: 'hi' }];
    const sources = [
      '{% for m in messages %}{{ m.role }}: {{ m.content }}{% if not loop.last %}\n{% endif %}{% endfor %}',
      "{{ range(3) | join(',') }}|{{ range(5, 0, -2) | join(',') }}|{{ range(2, 6) | join(',') }}",
      "{{ (none is none) ~ ' ' ~ (True and not False) ~ ' ' ~ (None is none) }}{{ strftime_now('%Y') | length }}",
      '{% if add_generation_prompt %}{{ bos_token }}ASSISTANT:{% endif %}',
    ];
    const context = { messages, add_generation_prompt: true, bos_token: '<s>' };
    for (const source of sources)
      expect(renderChatTemplate(source, messages, { bos_token: '<s>' }, { addGenerationPrompt: true })).toBe(
        new Template(source).render(context),
      );
    expect(() =>
      renderChatTemplate("{{ raise_exception('no system role') }}", hello, {}, {}, 't.jinja'),
    ).toThrow('Chat template t.jinja failed to render: no system role.');
  });
});

describe('tokenizer.json structure', () => {
  it.each([
    [
      'model is a string',
      (j: Record<string, unknown>) => ({ ...j, model: 'BPE' }),
      /has no "model" object with a string "type"/,
    ],
    [
      'added_tokens is an object',
      (j: Record<string, unknown>) => ({ ...j, added_tokens: {} }),
      /"added_tokens" is not a list/,
    ],
    [
      'an added token lacks its id',
      (j: Record<string, unknown>) => ({ ...j, added_tokens: [{ content: '<x>' }] }),
      /"added_tokens"\[0\] lacks an integer "id" or a string "content"/,
    ],
    [
      'the merges are a number',
      (j: Record<string, unknown>) => ({ ...j, model: { ...(j.model as object), merges: 5 } }),
      /tokenizer\.json \(with tokenizer_config\.json\) cannot be loaded as a Hugging Face tokenizer: .*re-export the tokenizer folder/,
    ],
  ])('%s: an Error naming tokenizer.json', async (_what, mutate, message) => {
    const bad = await mkdtemp(join(tmpdir(), 'vistune-tokenizer-bad-'));
    try {
      const json = JSON.parse(await readFile(join(fixtureDir, 'tokenizer.json'), 'utf8'));
      await writeFile(join(bad, 'tokenizer.json'), JSON.stringify(mutate(json)));
      const error = await Tokenizer.fromDir(bad).catch((e: unknown) => e);
      expect((error as Error).constructor).toBe(Error);
      expect((error as Error).message).toContain(join(bad, 'tokenizer.json'));
      expect((error as Error).message).toMatch(message);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
