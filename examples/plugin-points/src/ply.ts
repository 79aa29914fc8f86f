// PLY files ↔ point arrays. Reading goes through loaders.gl (ASCII and binary PLY, any vertex properties);
// writing emits ASCII PLY with float xyz and uchar rgb, which is what the world generator needs.
import { parse } from '@loaders.gl/core';
import { PLYLoader } from '@loaders.gl/ply';

/** A point cloud as flat arrays: xyz per point and, when the file has colour, rgb in [0, 1]. */
export interface PointCloud {
  /** [count * 3] x, y, z. */
  positions: Float32Array;
  /** [count * 3] r, g, b in [0, 1]; absent when the file has no colour properties. */
  colors?: Float32Array;
  count: number;
}

interface PlyAttribute {
  value: ArrayLike<number>;
  size: number;
  normalized?: boolean;
}

/** The first `width` components of each `size`-wide element (RGBA → RGB), scaled to [0, 1] when stored as integers. */
function components(attribute: PlyAttribute, count: number, width: number, scale: number): Float32Array {
  const out = new Float32Array(count * width);
  for (let i = 0; i < count; i++)
    for (let c = 0; c < width; c++)
      out[i * width + c] = Number(attribute.value[i * attribute.size + c]) * scale;
  return out;
}

/** Parses PLY bytes; `where` names the file in errors. */
export async function readPly(bytes: Uint8Array, where: string): Promise<PointCloud> {
  // Every PLY file starts with the magic line "ply" (loaders.gl returns an empty mesh for anything else).
  if (!/^ply\r?\n/.test(new TextDecoder().decode(bytes.subarray(0, 5))))
    throw new Error(
      `${where}: not a PLY file (it does not start with the line "ply"); convert the point cloud to PLY`,
    );
  let mesh: { attributes: Record<string, PlyAttribute | undefined> };
  try {
    // loaders.gl wants an ArrayBuffer of exactly the file's bytes; no worker (Node, and files are small).
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    mesh = (await parse(buffer, PLYLoader, { worker: false })) as typeof mesh;
  } catch (err) {
    throw new Error(
      `${where}: not a readable PLY file (${(err as Error).message}); write it as ASCII or binary PLY with x, y, z vertex properties`,
    );
  }
  const position = mesh.attributes.POSITION;
  const count = position ? Math.floor(position.value.length / position.size) : 0;
  if (!position || count === 0 || position.size < 3)
    throw new Error(
      `${where}: the PLY file has no vertices with x, y, z: a point cloud needs 'element vertex N' with x y z properties`,
    );
  const positions = components(position, count, 3, 1);
  for (const v of positions)
    if (!Number.isFinite(v))
      throw new Error(`${where}: a vertex coordinate is NaN or infinite: fix or drop that vertex`);
  const color = mesh.attributes.COLOR_0;
  // Colours stored as uchar come back un-normalised with `normalized: true`; float colours are already in [0, 1].
  const scale = color?.normalized || color?.value instanceof Uint8Array ? 1 / 255 : 1;
  return { positions, colors: color ? components(color, count, 3, scale) : undefined, count };
}

/** ASCII PLY text of a cloud (colours written as uchar 0-255). */
export function plyText(cloud: PointCloud): string {
  const lines = [
    'ply',
    'format ascii 1.0',
    'comment written by vistune-plugin-points',
    `element vertex ${cloud.count}`,
    'property float x',
    'property float y',
    'property float z',
  ];
  if (cloud.colors) lines.push('property uchar red', 'property uchar green', 'property uchar blue');
  lines.push('end_header');
  const byte = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let i = 0; i < cloud.count; i++) {
    const p = cloud.positions;
    let line = `${p[3 * i].toFixed(4)} ${p[3 * i + 1].toFixed(4)} ${p[3 * i + 2].toFixed(4)}`;
    const c = cloud.colors;
    if (c) line += ` ${byte(c[3 * i])} ${byte(c[3 * i + 1])} ${byte(c[3 * i + 2])}`;
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}
