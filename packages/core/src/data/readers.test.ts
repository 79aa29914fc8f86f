import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFormat, readRecords, readSamples } from './readers.js';
import type { SampleResult } from './samples.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-readers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(file: string, imageFolder?: string): Promise<SampleResult[]> {
  const out: SampleResult[] = [];
  for await (const r of readSamples(file, { imageFolder })) out.push(r);
  return out;
}

const llava = {
  id: 'a1',
  image: 'coco/1.jpg',
  conversations: [
    { from: 'human', value: '<image>\nWhat is this?' },
    { from: 'gpt', value: 'A dog.' },
  ],
};

describe('readers', () => {
  it('JSON array: LLaVA records and triplets become conversations; paths resolve against the image folder', async () => {
    const file = join(dir, 'data.json');
    const triplet = {
      instruction: 'Describe the image.',
      input: { image: 'x.png', text: 'Be short.' },
      output: 'Red cube.',
    };
    const textOnly = {
      id: 7,
      conversations: [
        { from: 'human', value: 'Hi' },
        { from: 'gpt', value: 'Hello' },
      ],
    };
    const absolute = { ...llava, id: 'abs', image: '/abs/img.png' };
    await writeFile(file, JSON.stringify([llava, triplet, textOnly, absolute], null, 2));
    const results = await collect(file, '/images');
    expect(results.every((r) => r.ok)).toBe(true);
    const samples = results.map((r) => (r.ok ? r.sample : undefined)!);
    expect(samples[0]).toMatchObject({
      id: 'a1',
      images: ['/images/coco/1.jpg'],
      turns: [
        { role: 'user', text: '<image>\nWhat is this?' },
        { role: 'assistant', text: 'A dog.' },
      ],
      location: { file, index: 0 },
      markersPrepended: false,
    });
    // Triplet: no id (file:index), the input text on its own line, the image marker prepended (LLaVA).
    expect(samples[1]).toMatchObject({
      id: 'data.json:1',
      images: ['/images/x.png'],
      turns: [
        { role: 'user', text: '<image>\nDescribe the image.\nBe short.' },
        { role: 'assistant', text: 'Red cube.' },
      ],
      markersPrepended: true,
    });
    expect(samples[2]).toMatchObject({ id: '7', images: [] });
    expect(samples[3].images).toEqual(['/abs/img.png']);
  });

  it('JSONL: streamed line by line; bad lines and records come back with their line numbers and reasons', async () => {
    const file = join(dir, 'data.jsonl');
    const lines = [
      JSON.stringify(llava),
      '',
      '{"id": "broken", ',
      JSON.stringify({ id: 'b', conversations: [{ from: 'robot', value: 'x' }] }),
      JSON.stringify({
        id: 'c',
        conversations: [
          { from: 'human', value: 'q' },
          { from: 'human', value: 'q2' },
        ],
      }),
      JSON.stringify({
        id: 'd',
        image: ['1.png', '2.png'],
        conversations: [
          { from: 'human', value: '<image> one' },
          { from: 'gpt', value: 'a' },
        ],
      }),
      JSON.stringify([1, 2]),
      JSON.stringify({
        id: 'e',
        conversations: [
          { from: 'gpt', value: 'orphan' },
          { from: 'human', value: 'q' },
          { from: 'gpt', value: 'a' },
        ],
      }),
      JSON.stringify({ id: 'f', image: 3, conversations: [{ from: 'human', value: 'q' }] }),
    ];
    await writeFile(file, `${lines.join('\n')}\n`);
    const results = await collect(file);
    const summary = results.map((r) =>
      r.ok ? `ok ${r.sample.id}@${r.sample.location.line}` : `${r.reason} ${r.message}`,
    );
    expect(summary[0]).toBe('ok a1@1');
    expect(summary[1]).toMatch(new RegExp(`^invalid_json ${file}:3: `));
    expect(summary[2]).toBe(
      `unknown_role ${file}:4: sample b: conversations[0].from is "robot"; use human, gpt or system`,
    );
    expect(summary[3]).toMatch(
      new RegExp(`^bad_turn_order ${file}:5: sample c: turn 1 is user where assistant was expected`),
    );
    expect(summary[4]).toBe(`image_count_mismatch ${file}:6: sample d: 1 <image> marker(s) but 2 image(s)`);
    expect(summary[5]).toBe(`invalid_record ${file}:7: a record must be a JSON object`);
    expect(summary[6]).toBe('ok e@8');
    expect(summary[7]).toBe(
      `invalid_record ${file}:9: sample f: image must be a string or a list of strings`,
    );
    expect(results).toHaveLength(8);
    const e = results[6];
    if (e.ok) {
      // LLaVA drops a first turn that is not from the human.
      expect(e.sample.leadingAssistantDropped).toBe(true);
      expect(e.sample.turns.map((t) => t.role)).toEqual(['user', 'assistant']);
      // Images default to the data file's folder.
      expect(results[0].ok && results[0].sample.images).toEqual([join(dir, 'coco/1.jpg')]);
    }
  });

  it('format: .jsonl, else the first non-blank character; a .json that is not an array is a file error', async () => {
    const jsonlInJson = join(dir, 'lines.json');
    await writeFile(jsonlInJson, `\n  ${JSON.stringify(llava)}\n${JSON.stringify(llava)}\n`);
    expect(await detectFormat(jsonlInJson)).toBe('jsonl');
    expect((await collect(jsonlInJson)).filter((r) => r.ok)).toHaveLength(2);
    const object = join(dir, 'object.txt');
    await writeFile(object, '"just a string"');
    await expect(async () => {
      for await (const _ of readRecords(object)) {
        // drain
      }
    }).rejects.toThrow(`${object} holds a JSON string, not an array of records`);
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '[{"id": 1},');
    await expect(collect(broken)).rejects.toThrow(/broken\.json is not valid JSON .*use JSONL/);
  });

  it('a system turn first is kept; a second system turn is out of order', async () => {
    const file = join(dir, 'system.jsonl');
    const sys = { from: 'system', value: 'Be brief.' };
    await writeFile(
      file,
      [
        { id: 's', conversations: [sys, { from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] },
        { id: 't', conversations: [{ from: 'human', value: 'q' }, sys, { from: 'gpt', value: 'a' }] },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const [s, t] = await collect(file);
    expect(s.ok && s.sample.turns.map((x) => x.role)).toEqual(['system', 'user', 'assistant']);
    expect(t.ok ? 'ok' : t.reason).toBe('bad_turn_order');
  });
});
