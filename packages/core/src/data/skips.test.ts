import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { type LoadInstructionDataOptions, loadInstructionData } from './dataset.js';
import { type DataStats, dataStatsJson, formatDataStats, SKIP_REASONS, type SkipReason } from './stats.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const IMAGE = 32000;

let dir: string;
let tokenizer: Tokenizer;
let videoId: number;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  [videoId] = tokenizer.addTokens(['<video>'], { special: true });
  dir = await mkdtemp(join(tmpdir(), 'vistune-skips-'));
  await mkdir(join(dir, 'media'));
  for (const name of ['a.png', 'clip.mp4']) await writeFile(join(dir, 'media', name), 'not decoded here');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const h = (value: unknown) => ({ from: 'human', value });
const g = (value: unknown) => ({ from: 'gpt', value });
const good = { id: 'good', image: 'a.png', conversations: [h('<image>\nWhat is it?'), g('A cube.')] };

/** Options for a file of the fixture tokenizer's vicuna_v1 with images (4 slots) and videos (2 slots). */
function options(files: string, extra: Partial<LoadInstructionDataOptions> = {}): LoadInstructionDataOptions {
  return {
    files,
    imageFolder: join(dir, 'media'),
    tokenizer,
    template: 'vicuna_v1',
    mediaTokens: { image: { id: IMAGE, slots: 4 }, video: { id: videoId, slots: 2 } },
    maxLength: 96,
    maxSkipFraction: 1,
    ...extra,
  };
}

/** A JSONL file: the good record on line 1, then `bad` (a record, or raw text / bytes) on line 2. */
async function fileWith(name: string, bad: unknown): Promise<string> {
  const file = join(dir, `${name}.jsonl`);
  const line =
    bad instanceof Uint8Array
      ? Buffer.from(bad)
      : Buffer.from(typeof bad === 'string' ? bad : JSON.stringify(bad));
  await writeFile(file, Buffer.concat([Buffer.from(`${JSON.stringify(good)}\n`), line, Buffer.from('\n')]));
  return file;
}

const latin1Line = Buffer.concat([
  Buffer.from('{"id": "cafe", "conversations": [{"from": "human", "value": "caf'),
  Buffer.from([0xe9]), // é in Latin-1: not UTF-8 on its own
  Buffer.from('?"}, {"from": "gpt", "value": "Oui."}]}'),
]);

/** One tiny record per reason; `id` is the sample id the report must name (undefined: none can be read). */
const cases: {
  reason: SkipReason;
  bad: unknown;
  id?: string;
  extra?: Partial<LoadInstructionDataOptions>;
}[] = [
  { reason: 'invalid_json', bad: '{"id": "cut", "conversations": [', id: 'cut' },
  { reason: 'not_utf8', bad: latin1Line, id: 'cafe' },
  { reason: 'invalid_record', bad: { id: 'noconv', conversations: 'hello' }, id: 'noconv' },
  { reason: 'empty_conversation', bad: { id: 'empty', conversations: [] }, id: 'empty' },
  {
    reason: 'unknown_role',
    bad: { id: 'robot', conversations: [{ from: 'robot', value: 'q' }, g('a')] },
    id: 'robot',
  },
  { reason: 'value_not_string', bad: { id: 'num', conversations: [h(42), g('a')] }, id: 'num' },
  {
    reason: 'turn_too_long',
    bad: { id: 'huge', conversations: [h('x'.repeat(1 << 20)), g('a')] },
    id: 'huge',
  },
  { reason: 'bad_turn_order', bad: { id: 'hh', conversations: [h('q'), h('q2'), g('a')] }, id: 'hh' },
  {
    reason: 'image_count_mismatch',
    bad: { id: 'more', image: 'a.png', conversations: [h('<image> <image>'), g('a')] },
    id: 'more',
  },
  {
    reason: 'image_missing',
    bad: { id: 'gone', image: 'zz.png', conversations: [h('<image>'), g('a')] },
    id: 'gone',
  },
  {
    reason: 'image_truncated',
    bad: { id: 'late', image: 'a.png', conversations: [h(`${'word '.repeat(80)}<image>`), g('a')] },
    id: 'late',
  },
  { reason: 'no_supervised_tokens', bad: { id: 'mute', conversations: [h('q')] }, id: 'mute' },
  {
    reason: 'template_mismatch',
    bad: { id: 'twice', image: 'a.png', conversations: [h('<image>'), g('a'), h('b'), g('c')] },
    id: 'twice',
    extra: { template: 'plain' },
  },
  {
    reason: 'targets_mismatch',
    bad: { id: 'masks', conversations: [h('q'), g('a')] },
    id: 'masks',
    extra: {
      targets: {
        read: (record) => ((record as { id: string }).id === 'masks' ? { seg: [1] } : undefined),
        triggers: {},
      },
    },
  },
  {
    reason: 'video_missing',
    bad: { id: 'novideo', video: 'gone.mp4', conversations: [h('<video>\nq'), g('a')] },
    id: 'novideo',
  },
  {
    reason: 'video_count_mismatch',
    bad: { id: 'vids', video: ['clip.mp4', 'clip.mp4'], conversations: [h('<video> q'), g('a')] },
    id: 'vids',
  },
  {
    reason: 'video_truncated',
    bad: { id: 'latevid', video: 'clip.mp4', conversations: [h(`${'word '.repeat(80)}<video>`), g('a')] },
    id: 'latevid',
  },
];

describe('every dropped record has a named reason, its file:line and id', () => {
  it('covers every fixed reason', () => {
    expect(SKIP_REASONS.filter((r) => !cases.some((c) => c.reason === r))).toEqual([]);
  });

  for (const { reason, bad, id, extra } of cases)
    it(reason, async () => {
      const file = await fileWith(reason, bad);
      const { examples, stats } = await loadInstructionData(options(file, extra));
      expect(examples.map((e) => e.id)).toEqual(['good']);
      expect(Object.entries(stats.skipped).filter(([, n]) => n > 0)).toEqual([[reason, 1]]);
      expect(stats.skippedRecords[reason]).toEqual([{ where: `${file}:2`, id, message: expect.any(String) }]);
      const [record] = stats.skippedRecords[reason];
      expect(record.message.startsWith(`${file}:2: sample ${id}: `)).toBe(true);
      expect(formatDataStats(stats)).toContain(`skipped ${reason} 1: ${file}:2 ${id}`);
    });

  it('a 1 MB question is refused before tokenizing; maxTurnChars sets the limit', async () => {
    const file = await fileWith('big', { id: 'big', conversations: [h('x '.repeat(1 << 19)), g('a')] });
    const started = performance.now();
    const { stats } = await loadInstructionData(options(file));
    expect(performance.now() - started).toBeLessThan(2000); // tokenizing it took ~10 s
    expect(stats.skippedRecords.turn_too_long[0].message).toBe(
      `${file}:2: sample big: conversations[0].value has ${1 << 20} characters, more than maxTurnChars 100000: shorten it, or raise the limit (recipe data.maxTurnChars)`,
    );
    const answer = await fileWith('answer', { id: 'long', conversations: [h('q'), g('ok '.repeat(100))] });
    const limited = await loadInstructionData(options(answer, { maxTurnChars: 299 }));
    expect(limited.stats.skippedRecords.turn_too_long[0].message).toMatch(
      /sample long: conversations\[1\]\.value has 300 characters, more than maxTurnChars 299/,
    );
    expect((await loadInstructionData(options(answer, { maxTurnChars: 300 }))).examples).toHaveLength(2);
  });

  it('not UTF-8: the line is skipped, never decoded into U+FFFD; JSON arrays skip the element', async () => {
    const file = await fileWith('latin1-msg', latin1Line);
    const { examples, stats } = await loadInstructionData(options(file));
    expect(examples.some((e) => tokenizer.decode(Array.from(e.inputIds)).includes('\uFFFD'))).toBe(false);
    expect(stats.skippedRecords.not_utf8[0].message).toBe(
      `${file}:2: sample cafe: byte ${latin1Line.indexOf(0xe9)} of the line (0xe9) is not UTF-8: re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)`,
    );
    const array = join(dir, 'latin1.json');
    await writeFile(
      array,
      Buffer.concat([
        Buffer.from(`[${JSON.stringify(good)},\n`),
        latin1Line,
        Buffer.from(`,\n${JSON.stringify(good)}]`),
      ]),
    );
    const fromArray = await loadInstructionData(options(array));
    expect(fromArray.examples).toHaveLength(2);
    expect(fromArray.stats.skippedRecords.not_utf8).toEqual([
      { where: `${array}[1]`, id: 'cafe', message: expect.stringMatching(/not UTF-8: re-encode the file/) },
    ]);
    // A file that also holds U+FFFD itself cannot be told apart: refused whole, with the way out.
    const ambiguous = join(dir, 'ambiguous.json');
    await writeFile(ambiguous, Buffer.concat([Buffer.from('["\uFFFD",'), latin1Line, Buffer.from(']')]));
    await expect(loadInstructionData(options(ambiguous))).rejects.toThrow(
      /ambiguous\.json is not valid UTF-8 \(byte \d+\) and also holds U\+FFFD characters.*convert it to JSONL/,
    );
  });

  it('a UTF-8 byte order mark and CRLF line ends are not errors', async () => {
    const file = join(dir, 'bom.jsonl');
    await writeFile(
      file,
      `\uFEFF${JSON.stringify(good)}\r\n${JSON.stringify({ ...good, id: 'second' })}\r\n`,
    );
    const { examples, stats } = await loadInstructionData(options(file));
    expect(examples.map((e) => e.id)).toEqual(['good', 'second']);
    expect(stats.samplesRead).toBe(2);
  });
});

describe('strict and maxSkipFraction', () => {
  it('strict fails at the first skip, naming file:line, id and reason', async () => {
    const file = await fileWith('strict', { id: 'hh', conversations: [h('q'), h('q2'), g('a')] });
    await expect(loadInstructionData(options(file, { strict: true }))).rejects.toThrow(
      `${file}:2: sample hh: turn 1 is user where assistant was expected (turns alternate user/assistant after one optional system turn) [bad_turn_order]. Strict mode stops at the first skipped record`,
    );
    const clean = join(dir, 'clean.jsonl');
    await writeFile(clean, `${JSON.stringify(good)}\n`);
    expect((await loadInstructionData(options(clean, { strict: true }))).examples).toHaveLength(1);
  });

  it('more skips than maxSkipFraction fail naming the recipe field and CLI flag; the fraction is checked', async () => {
    const file = await fileWith('fraction', '{broken');
    // 1 of 2 records skipped: 0.5 > 0.2 (the default).
    await expect(loadInstructionData(options(file, { maxSkipFraction: undefined }))).rejects.toThrow(
      /1 of 2 records were skipped, more than maxSkipFraction 0.2[\s\S]*skipped invalid_json 1: \S+fraction\.jsonl:2\n[\s\S]*set the recipe's data\.maxSkipFraction \(or the CLI flag --max-skip-fraction; 1 never fails\)/,
    );
    expect((await loadInstructionData(options(file, { maxSkipFraction: 0.5 }))).examples).toHaveLength(1);
    await expect(loadInstructionData(options(file, { maxSkipFraction: 20 }))).rejects.toThrow(
      'maxSkipFraction must be a number from 0 to 1, got 20',
    );
  });
});

describe('the data summary', () => {
  function statsOf(): Promise<DataStats> {
    return (async () => {
      const file = join(dir, 'summary.jsonl');
      const bad = (i: number) =>
        JSON.stringify({ id: `r${i}`, conversations: [{ from: 'bot', value: 'q' }, g('a')] });
      const video = {
        id: 'v',
        video: 'clip.mp4',
        conversations: [h('<video>\nWhat happens?'), g('A spin.')],
      };
      await writeFile(
        file,
        [JSON.stringify(good), ...[1, 2, 3, 4].map(bad), JSON.stringify(video), '{'].join('\n'),
      );
      return (await loadInstructionData(options(file))).stats;
    })();
  }

  it('formatDataStats: kept / skipped per reason with the first 3 file:line id, token and media counts', async () => {
    const stats = await statsOf();
    const file = join(dir, 'summary.jsonl');
    const lines = formatDataStats(stats).split('\n');
    expect(lines[0]).toBe('samples: 7 read, 2 used, 5 skipped (invalid_json 1, unknown_role 4)');
    expect(lines[1]).toBe(
      `tokens: ${stats.totalTokens} total, ${stats.supervisedTokens} supervised; images: 1; media: image 1, video 1`,
    );
    expect(lines).toContain(`skipped unknown_role 4: ${file}:2 r1, ${file}:3 r2, ${file}:4 r3, … 1 more`);
    expect(lines).toContain(
      `  e.g. ${file}:2: sample r1: conversations[0].from is "bot"; use human, gpt or system`,
    );
    expect(lines.find((l) => l.startsWith('skipped invalid_json'))).toBe(`skipped invalid_json 1: ${file}:7`);
  });

  it('dataStatsJson: plain JSON with kept, skipped per reason with examples, totals', async () => {
    const stats = await statsOf();
    const json = dataStatsJson(stats);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(json).toMatchObject({
      read: 7,
      kept: 2,
      skipped: { total: 5 },
      tokens: { total: stats.totalTokens, supervised: stats.supervisedTokens },
      media: { image: 1, video: 1 },
    });
    expect(Object.keys(json.skipped.reasons)).toEqual(['invalid_json', 'unknown_role']);
    expect(json.skipped.reasons.unknown_role.count).toBe(4);
    expect(json.skipped.reasons.unknown_role.examples.map((e) => e.id)).toEqual(['r1', 'r2', 'r3']);
  });
});
