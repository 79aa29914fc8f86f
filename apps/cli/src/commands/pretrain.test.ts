import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

// 16×16 grayscale PNGs: a bright 4×4 square in one 8-pixel cell (written by hand: the CLI has no image encoder).
async function writePng(path: string, cell: number): Promise<void> {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16, 0);
  ihdr.writeUInt32BE(16, 4);
  ihdr[8] = 8;
  const rows = Buffer.alloc(16 * 17);
  const [cx, cy] = [(cell % 2) * 8 + 2, Math.floor(cell / 2) * 8 + 2];
  for (let y = cy; y < cy + 4; y++) for (let x = cx; x < cx + 4; x++) rows[y * 17 + 1 + x] = 255;
  await writeFile(
    path,
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(rows)),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-pretrain-cli-'));
  await mkdir(join(dir, 'images'));
  const records = [];
  for (let i = 0; i < 24; i++) {
    const cell = i % 4;
    await writePng(join(dir, 'images', `${i}.png`), cell);
    const [x0, y0] = [(cell % 2) * 8 + 2, Math.floor(cell / 2) * 8 + 2];
    records.push({
      id: i,
      image: `images/${i}.png`,
      objects: [{ label: cell < 2 ? 'top' : 'bottom', box: [x0, y0, x0 + 4, y0 + 4] }],
      conversations: [
        { from: 'human', value: '<image>\nWhere is the square?' },
        { from: 'gpt', value: cell < 2 ? 'top' : 'bottom' },
      ],
    });
  }
  await writeFile(join(dir, 'train.json'), JSON.stringify(records.slice(0, 16)));
  await writeFile(join(dir, 'val.json'), JSON.stringify(records.slice(16)));
  await writeFile(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({ image_processor_type: 'CLIPImageProcessor', do_resize: false, do_center_crop: false }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** bin, the command and its data flags. */
const dataArgs = () => [
  bin,
  'pretrain',
  '--data',
  join(dir, 'train.json'),
  '--val',
  join(dir, 'val.json'),
  '--preprocessor',
  join(dir, 'preprocessor_config.json'),
];

describe('vistune pretrain', () => {
  it('trains a cnn_vision tower, prints evidence with its control and writes a loadable tower folder', async () => {
    const out = join(dir, 'tower');
    const { stdout } = await run(process.execPath, [
      ...dataArgs(),
      '--encoder',
      '{"type":"cnn_vision","hidden_sizes":[8,8,8],"patch_size":8,"hidden_size":8}',
      '--steps',
      '5',
      '--batch-size',
      '8',
      '--out',
      out,
      '--json',
    ]);
    const report = JSON.parse(stdout) as { steps: number; evidence: { name: string; control: number }[] };
    expect(report.steps).toBe(5);
    expect(report.evidence[0]?.name).toMatch(/linear probe: object label/);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'vistune_cnn_vision',
      hidden_sizes: [8, 8, 8],
      patch_size: 8,
    });
    expect(JSON.parse(await readFile(join(out, 'preprocessor_config.json'), 'utf8'))).toMatchObject({
      do_resize: false,
    });
  });

  it('names the missing tower flag', async () => {
    const failure = await run(process.execPath, [...dataArgs(), '--out', join(dir, 'none')]).catch(
      (err: { stderr: string; code: number }) => err,
    );
    expect((failure as { stderr: string }).stderr).toMatch(/--encoder .* or --from DIR/);
  });
});
