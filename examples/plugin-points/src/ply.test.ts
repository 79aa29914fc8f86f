import { describe, expect, it } from 'vitest';
import { plyText, readPly } from './ply.js';

const cloud = {
  positions: new Float32Array([0, 0, 0, 1.5, -2, 0.25, -0.125, 3, 7]),
  colors: new Float32Array([1, 0, 0, 0, 1, 0, 0.2, 0.4, 0.6]),
  count: 3,
};

/** A binary little-endian PLY with float xyz and uchar rgb, written byte by byte (as scanners export it). */
function binaryPly(): Uint8Array {
  const header = new TextEncoder().encode(
    'ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n' +
      'property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n',
  );
  const body = new DataView(new ArrayBuffer(2 * 15));
  [
    [1, 2, 3, 255, 128, 0],
    [-1, 0.5, 0, 0, 0, 51],
  ].forEach((v, i) => {
    for (let c = 0; c < 3; c++) body.setFloat32(i * 15 + 4 * c, v[c], true);
    for (let c = 0; c < 3; c++) body.setUint8(i * 15 + 12 + c, v[3 + c]);
  });
  const out = new Uint8Array(header.length + body.byteLength);
  out.set(header);
  out.set(new Uint8Array(body.buffer), header.length);
  return out;
}

describe('PLY files', () => {
  it('round-trips positions (4 decimals) and colours (1/255) through ASCII PLY', async () => {
    const read = await readPly(new TextEncoder().encode(plyText(cloud)), 'round.ply');
    expect(read.count).toBe(3);
    read.positions.forEach((v, i) => {
      expect(v).toBeCloseTo(cloud.positions[i], 4);
    });
    read.colors?.forEach((v, i) => {
      expect(Math.abs(v - cloud.colors[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    });
  });

  it('reads binary little-endian PLY with uchar colours scaled to [0, 1]', async () => {
    const read = await readPly(binaryPly(), 'scan.ply');
    expect(Array.from(read.positions)).toEqual([1, 2, 3, -1, 0.5, 0]);
    expect(Array.from(read.colors ?? []).map((v) => Math.round(v * 255))).toEqual([255, 128, 0, 0, 0, 51]);
  });

  it('reads clouds without colour', async () => {
    const read = await readPly(
      new TextEncoder().encode(plyText({ positions: cloud.positions, count: 3 })),
      'xyz.ply',
    );
    expect(read.colors).toBeUndefined();
    expect(read.count).toBe(3);
  });

  it('names the file when it is not a point cloud', async () => {
    await expect(readPly(new TextEncoder().encode('hello'), 'notes.ply')).rejects.toThrow(
      /notes\.ply: not a PLY file/,
    );
    const empty =
      'ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\nend_header\n';
    await expect(readPly(new TextEncoder().encode(empty), 'empty.ply')).rejects.toThrow(
      /empty\.ply: the PLY file has no vertices/,
    );
  });
});
