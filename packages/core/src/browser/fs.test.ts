// The in-memory file system of the browser build, against what node:fs does for the same calls.
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectFiles, memoryFsPromises as fs, memoryFs, mountFiles } from './fs.js';
import * as path from './path.js';

describe('in-memory file system (browser build of node:fs)', () => {
  it('mounts files, reads them as bytes or text, lists and stats them', async () => {
    const dir = mountFiles('/t1/model', { 'config.json': '{"a":1}', 'sub/w.bin': new Uint8Array([1, 2, 3]) });
    expect(dir).toBe('/t1/model');
    expect(await fs.readFile('/t1/model/config.json', 'utf8')).toBe('{"a":1}');
    expect([...((await fs.readFile('/t1/model/sub/w.bin')) as Uint8Array)]).toEqual([1, 2, 3]);
    expect(await fs.readdir('/t1/model')).toEqual(['config.json', 'sub']);
    const info = await fs.stat('/t1/model/sub/w.bin');
    expect([info.size, info.isFile(), info.isDirectory()]).toEqual([3, true, false]);
    expect((await fs.stat('/t1/model/sub')).isDirectory()).toBe(true);
    expect(memoryFs.existsSync('/t1/model/./sub/../config.json')).toBe(true);
  });

  it('fails like node:fs: ENOENT with the path, EISDIR, mkdir without recursive under a missing parent', async () => {
    await expect(fs.readFile('/t2/missing.json')).rejects.toMatchObject({
      code: 'ENOENT',
      path: '/t2/missing.json',
    });
    await expect(fs.writeFile('/t2/no-dir/x', 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    await fs.mkdir('/t2/d', { recursive: true });
    await expect(fs.readFile('/t2/d')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(fs.mkdir('/t2/a/b')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.mkdir('/t2/d')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(fs.mkdir('/t2/d', { recursive: true })).resolves.toBeUndefined();
  });

  it('serves positioned reads through open() and collects what savers wrote (rename, rm)', async () => {
    mountFiles('/t3', { 'data.bin': new Uint8Array([10, 11, 12, 13, 14, 15]) });
    const handle = await fs.open('/t3/data.bin', 'r');
    const buffer = new Uint8Array(4);
    const { bytesRead } = await handle.read(buffer, 1, 3, 2);
    expect(bytesRead).toBe(3);
    expect([...buffer]).toEqual([0, 12, 13, 14]);
    const out = await fs.open('/t3/out.tmp', 'w');
    await out.write(new Uint8Array([1, 2]));
    await out.write(new Uint8Array([3]));
    await out.close();
    await fs.rename('/t3/out.tmp', '/t3/out.bin');
    await fs.rm('/t3/data.bin');
    expect(Object.fromEntries(Object.entries(collectFiles('/t3')).map(([k, v]) => [k, [...v]]))).toEqual({
      'out.bin': [1, 2, 3],
    });
    await fs.rm('/t3', { recursive: true });
    expect(memoryFs.existsSync('/t3/out.bin')).toBe(false);
  });
});

describe('POSIX paths (browser build of node:path)', () => {
  const cases = [
    '/a/b/../c/./d.json',
    'a//b/',
    '/',
    '.',
    '../x/y',
    '/models/m/model.safetensors',
    'x.tar.gz',
    '/a/.hidden',
  ];
  it('normalize, dirname, basename, extname and join agree with node:path.posix', () => {
    for (const p of cases) {
      expect([path.normalize(p), path.dirname(p), path.basename(p), path.extname(p)], p).toEqual([
        posix.normalize(p).length > 1 ? posix.normalize(p).replace(/\/$/, '') : posix.normalize(p),
        posix.dirname(p),
        posix.basename(p),
        posix.extname(p),
      ]);
    }
    expect(path.join('/models', 'm', '../n', 'config.json')).toBe(
      posix.join('/models', 'm', '../n', 'config.json'),
    );
    expect(path.relative('/a/b/c', '/a/d')).toBe(posix.relative('/a/b/c', '/a/d'));
    expect(path.resolve('/a', 'b', '../c')).toBe(posix.resolve('/a', 'b', '../c'));
  });
});
