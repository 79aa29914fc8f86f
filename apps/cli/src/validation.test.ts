// Bad input at the command line gets a usage error or a message naming the file, the field and the fix;
// nothing is dropped or accepted silently (issue 13's CLI cases).
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

async function fails(args: string[]): Promise<{ code: number; stderr: string }> {
  const err = await run(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1' } }).then(
    () => {
      throw new Error(`vistune ${args.join(' ')} succeeded`);
    },
    (e: { code: number; stderr: string }) => e,
  );
  return { code: err.code, stderr: err.stderr };
}

describe('numbers are checked as the flags are read (usage errors, exit 2)', () => {
  it.each([
    [['--temperature', '-1'], /--temperature.*expected a number ≥ 0, got "-1"/],
    [['--top-p', '2'], /--top-p.*expected a probability in \(0, 1\], got "2"/],
    [['--top-k', '-3'], /--top-k.*expected a positive integer, got "-3"/],
    [['--max-new-tokens', '1.5'], /--max-new-tokens.*expected a positive integer/],
  ])('generate %j', async (flags, message) => {
    const { code, stderr } = await fails(['generate', '--model', fixture, '--prompt', 'hi', ...flags]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it.each([['abc'], ['-1'], ['0']])('train --max-steps %s', async (value) => {
    const { code, stderr } = await fails(['train', '--config', 'x.yaml', '--max-steps', value]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--max-steps.*expected a positive integer/);
  });

  it('registry --kind with an unknown kind names the kinds', async () => {
    const { code, stderr } = await fails(['registry', '--kind', 'adaptor']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--kind: no kind 'adaptor' \(kinds: .*adapter/);
  });
});

describe('model folders that are wrong say how', () => {
  it('image_token_index outside the vocabulary is named, not reported as a placeholder mismatch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-token-'));
    await cp(fixture, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, image_token_index: 40000 }));
    const { code, stderr } = await fails(['generate', '--model', dir, '--prompt', 'hi']);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /image_token_index 40000 is outside the text vocabulary \(text_config\.vocab_size 32064\)/,
    );
  });

  it('an unknown model_type is named with the registered families and the fix', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-type-'));
    await cp(fixture, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'llava_next_video' }));
    const { stderr } = await fails(['generate', '--model', dir, '--prompt', 'hi']);
    expect(stderr).toMatch(/model_type 'llava_next_video' is not a registered model family.*--plugin/);
  });
});

describe('system prompts', () => {
  it('render through a multimodal HF template (string contents become text parts)', async () => {
    const { stdout } = await run(process.execPath, [
      bin,
      'generate',
      '--model',
      fixture,
      '--system-prompt',
      'Be brief.',
      '--prompt',
      'hi',
      '--max-new-tokens',
      '1',
      '--json',
    ]);
    expect((JSON.parse(stdout) as { prompt: string }).prompt).toBe('Be brief. USER: hi ASSISTANT:');
  });
});

describe('NaN/Inf weights', () => {
  it('are refused at load naming the tensor; --allow-nonfinite loads them (an unused tensor here: greedy ids unchanged)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-nan-'));
    await cp(fixture, dir, { recursive: true });
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    const name = 'vision_tower.vision_model.post_layernorm.weight'; // LLaVA reads layer -2: never used
    const [start] = header[name].data_offsets as [number, number];
    bytes.writeUInt16LE(0x7e00, 8 + headerLength + start); // F16 NaN
    await writeFile(path, bytes);
    const c = (
      JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as {
        cases: { question: string; images: string[]; expected: { greedy_ids: number[] } }[];
      }
    ).cases.find((k) => k.images.length === 1)!;
    const args = ['generate', '--model', dir, '--prompt', c.question, '--image', `${fixture}${c.images[0]}`];
    args.push('--max-new-tokens', String(c.expected.greedy_ids.length), '--no-eos', '--json');
    const { code, stderr } = await fails(args);
    expect(code).toBe(1);
    expect(stderr).toContain(name);
    const { stdout } = await run(process.execPath, [bin, ...args, '--allow-nonfinite']);
    expect((JSON.parse(stdout) as { ids: number[] }).ids).toEqual(c.expected.greedy_ids);
  });
});

describe('eval reports what it skipped', () => {
  it('prints kept and skipped records per reason with file:line, and --json carries them', async () => {
    const c = (
      JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as {
        cases: { question: string; images: string[] }[];
      }
    ).cases.find((k) => k.images.length === 1)!;
    const dir = await mkdtemp(join(tmpdir(), 'vistune-evalskip-'));
    const good = {
      id: 'ok',
      image: `${fixture}${c.images[0]}`,
      conversations: [
        { from: 'human', value: `<image>\n${c.question}` },
        { from: 'gpt', value: 'yes' },
      ],
    };
    const twoImages = {
      ...good,
      id: 'two',
      conversations: [{ from: 'human', value: '<image><image>\nhi' }, good.conversations[1]],
    };
    const lines = [JSON.stringify(good), '{"id": "cut', JSON.stringify(twoImages)];
    const data = join(dir, 'val.jsonl');
    await writeFile(data, `${lines.join('\n')}\n`);
    const { stdout, stderr } = await run(
      process.execPath,
      [bin, 'eval', '--model', fixture, '--data', data, '--max-new-tokens', '2'],
      { env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(stdout).toMatch(/overall\s+1\b/);
    expect(stderr).toMatch(/invalid_json/);
    expect(stderr).toMatch(/val\.jsonl:2/);
    expect(stderr).toMatch(/image_count_mismatch/);
    expect(stderr).toMatch(/teacher-forced/);
    const json = await run(process.execPath, [
      bin,
      'eval',
      '--model',
      fixture,
      '--data',
      data,
      '--max-new-tokens',
      '2',
      '--json',
    ]);
    const out = JSON.parse(json.stdout) as {
      data: {
        kept: number;
        skipped: { reasons: Record<string, unknown> };
        tokens: { total: number; supervised: number };
        media: Record<string, number>;
      };
    };
    expect(out.data.kept).toBe(1);
    // The kept record's image and its prompt / reference tokens are counted, not reported as none.
    expect(out.data.media.image).toBe(1);
    expect(out.data.tokens.total).toBeGreaterThan(0);
    expect(out.data.tokens.supervised).toBeGreaterThan(0);
    expect(Object.keys(out.data.skipped.reasons)).toEqual(
      expect.arrayContaining(['invalid_json', 'image_count_mismatch']),
    );
  });
});

describe('chat keeps the session when the conversation outgrows the context', () => {
  it('drops the oldest turns, says so, and answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-ctx-'));
    await cp(fixture, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config.text_config.max_position_embeddings = 64;
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    const child = execFile(
      process.execPath,
      [bin, 'chat', '--model', dir, '--max-new-tokens', '4', '--no-eos'],
      {
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    let stdout = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    const turn = 'Tell me a long story about the sea and the ships on it';
    child.stdin?.end(`${turn}\n${turn}\n${turn}\n/exit\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout.split('assistant> ')).toHaveLength(4);
    expect(stdout).toMatch(/outgrew the model's 64-token context: the oldest 2 turn\(s\) were dropped/);
  });
});
