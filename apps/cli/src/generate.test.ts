import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const fixture = new URL('../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const run = promisify(execFile);

interface FixtureCase {
  name: string;
  question: string;
  images: string[];
  input_ids: number[];
  expected: { greedy_ids: number[]; greedy_text: string };
}
const cases = (JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;

describe('vistune generate on the HF LLaVA fixture (parity with the PyTorch reference)', () => {
  it.each(cases.map((c) => [c.name, c] as const))(
    '%s: input ids and greedy ids match exactly',
    async (_, c) => {
      const args = [bin, 'generate', '--model', fixture, '--prompt', c.question, '--temperature', '0'];
      args.push('--max-new-tokens', String(c.expected.greedy_ids.length), '--no-eos', '--json');
      if (c.images.length) args.push('--image', ...c.images.map((i) => `${fixture}${i}`));
      const { stdout } = await run(process.execPath, args);
      const out = JSON.parse(stdout) as { ids: number[]; inputIds: number[]; text: string };
      expect(out.inputIds).toEqual(c.input_ids);
      expect(out.ids).toEqual(c.expected.greedy_ids);
      expect(out.text).toBe(c.expected.greedy_text);
    },
  );

  it('--lm-head int8 (weight-only int8 head) keeps every case’s greedy ids', async () => {
    for (const c of cases) {
      const args = [bin, 'generate', '--model', fixture, '--prompt', c.question, '--lm-head', 'int8'];
      args.push('--max-new-tokens', String(c.expected.greedy_ids.length), '--no-eos', '--json');
      if (c.images.length) args.push('--image', ...c.images.map((i) => `${fixture}${i}`));
      const { stdout } = await run(process.execPath, args);
      expect((JSON.parse(stdout) as { ids: number[] }).ids, c.name).toEqual(c.expected.greedy_ids);
    }
    await expect(
      run(process.execPath, [bin, 'generate', '--model', fixture, '--prompt', 'hi', '--lm-head', 'int4']),
    ).rejects.toThrow(/--lm-head.*int4.*float32, int8/s);
  });

  it('a missing model folder is a clear error with exit code 1', async () => {
    const err = await run(process.execPath, [
      bin,
      'generate',
      '--model',
      '/nonexistent',
      '--prompt',
      'hi',
    ]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(
      /\/nonexistent\/config\.json not found: a model folder holds config\.json, model\.safetensors and tokenizer\.json/,
    );
  });

  it('--codec parses boxes from the answer (none in gibberish), --overlay without a codec is a usage error', async () => {
    const c = cases.find((k) => k.images.length === 1)!;
    const args = [
      bin,
      'generate',
      '--model',
      fixture,
      '--prompt',
      c.question,
      '--image',
      `${fixture}${c.images[0]}`,
    ];
    const { stdout } = await run(process.execPath, [
      ...args,
      '--max-new-tokens',
      '4',
      '--codec',
      'shikra',
      '--json',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ boxes: [], points: [], malformedBoxes: 0 });
    const err = await run(process.execPath, [...args, '--overlay', '/tmp/x.png']).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/--overlay: nothing to draw/);
  });

  it('a tokenizer larger than the embedding table is refused with both files named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-vocab-'));
    await cp(fixture, dir, { recursive: true });
    const tokPath = join(dir, 'tokenizer.json');
    const tok = JSON.parse(readFileSync(tokPath, 'utf8')) as {
      added_tokens: { id: number; content: string }[];
    };
    const extra = Array.from({ length: 100 }, (_, i) => ({
      id: 32002 + i,
      content: `<extra_${i}>`,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }));
    tok.added_tokens.push(...extra);
    await writeFile(tokPath, JSON.stringify(tok));
    const err = await run(process.execPath, [bin, 'generate', '--model', dir, '--prompt', 'hi']).catch(
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/tokenizer\.json has 32102 tokens but the model's vocab_size is 32064/);
  });

  it('an image count that does not match the placeholders is refused', async () => {
    const err = await run(process.execPath, [
      bin,
      'generate',
      '--model',
      fixture,
      '--prompt',
      'hi',
      '--image',
    ]).catch((e) => e);
    expect(err.code).toBe(2);
  });
});

describe('vistune chat', () => {
  it('answers turn by turn from stdin, with an image attached by /image, as generate does', async () => {
    const c = cases.find((k) => k.images.length === 1)!;
    const child = execFile(
      process.execPath,
      [bin, 'chat', '--model', fixture, '--max-new-tokens', String(c.expected.greedy_ids.length), '--no-eos'],
      { env: { ...process.env, NO_COLOR: '1' } },
    );
    let stdout = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stdin?.end(`/image ${fixture}${c.images[0]}\n${c.question}\nAnd now?\n/exit\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    const answers = stdout
      .split('assistant> ')
      .slice(1)
      .map((a) => a.split('\n')[0]);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toBe(c.expected.greedy_text.trim());
    expect(answers[1].length).toBeGreaterThan(0);
  });
});
