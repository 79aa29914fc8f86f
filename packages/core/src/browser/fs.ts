// An in-memory file system standing in for node:fs in the browser build: model folders fetched over HTTP (or
// taken from File objects) are written here, so the same loaders (loadPretrained, Tokenizer.fromDir, the image
// processors) read them unchanged, and savers (saveLoraAdapter, model.save) write files a page can download.
// Paths are POSIX; only what vistune's loaders and savers call is implemented.

interface Entry {
  kind: 'file' | 'dir';
  data: Uint8Array;
  mtimeMs: number;
}

const entries = new Map<string, Entry>([
  ['/', { kind: 'dir', data: new Uint8Array(0), mtimeMs: Date.now() }],
]);

function normalize(path: string | URL): string {
  const raw = typeof path === 'string' ? path : path.pathname;
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function parent(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

function fsError(code: string, syscall: string, path: string): Error {
  const messages: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EISDIR: 'illegal operation on a directory',
    ENOTDIR: 'not a directory',
    EEXIST: 'file already exists',
  };
  return Object.assign(
    new Error(`${code}: ${messages[code] ?? code}, ${syscall} '${path}' (in-memory file system)`),
    {
      code,
      syscall,
      path,
    },
  );
}

function lookup(path: string | URL, syscall: string): Entry {
  const p = normalize(path);
  const entry = entries.get(p);
  if (!entry) throw fsError('ENOENT', syscall, p);
  return entry;
}

type Encoding = BufferEncoding | { encoding?: BufferEncoding | null } | null | undefined;
type BufferEncoding = 'utf8' | 'utf-8';

function encodingOf(options: Encoding): BufferEncoding | undefined {
  if (typeof options === 'string') return options;
  return options?.encoding ?? undefined;
}

function toBytes(data: string | ArrayBufferView): Uint8Array {
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

function mkdirSync(path: string | URL, options?: { recursive?: boolean }): string | undefined {
  const p = normalize(path);
  const existing = entries.get(p);
  if (existing) {
    if (existing.kind === 'dir' && options?.recursive) return undefined;
    throw fsError('EEXIST', 'mkdir', p);
  }
  if (!entries.has(parent(p))) {
    if (!options?.recursive) throw fsError('ENOENT', 'mkdir', p);
    mkdirSync(parent(p), options);
  }
  entries.set(p, { kind: 'dir', data: new Uint8Array(0), mtimeMs: Date.now() });
  return p;
}

function writeFileSync(path: string | URL, data: string | ArrayBufferView): void {
  const p = normalize(path);
  const dir = entries.get(parent(p));
  if (dir?.kind !== 'dir') throw fsError('ENOENT', 'open', p);
  if (entries.get(p)?.kind === 'dir') throw fsError('EISDIR', 'open', p);
  entries.set(p, { kind: 'file', data: toBytes(data), mtimeMs: Date.now() });
}

function readFileSync(path: string | URL, options?: Encoding): string | Uint8Array {
  const entry = lookup(path, 'open');
  if (entry.kind === 'dir') throw fsError('EISDIR', 'read', normalize(path));
  const encoding = encodingOf(options);
  return encoding ? new TextDecoder().decode(entry.data) : entry.data.slice();
}

function statSync(path: string | URL) {
  const entry = lookup(path, 'stat');
  return {
    size: entry.data.length,
    mtimeMs: entry.mtimeMs,
    mtime: new Date(entry.mtimeMs),
    isFile: () => entry.kind === 'file',
    isDirectory: () => entry.kind === 'dir',
    isSymbolicLink: () => false,
  };
}

function readdirSync(path: string | URL, options?: { withFileTypes?: boolean }) {
  const p = normalize(path);
  if (lookup(p, 'scandir').kind !== 'dir') throw fsError('ENOTDIR', 'scandir', p);
  const prefix = p === '/' ? '/' : `${p}/`;
  const names = [...entries.keys()]
    .filter((k) => k !== p && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
    .map((k) => k.slice(prefix.length))
    .sort();
  if (!options?.withFileTypes) return names;
  return names.map((name) => {
    const entry = entries.get(prefix + name) as Entry;
    return { name, isFile: () => entry.kind === 'file', isDirectory: () => entry.kind === 'dir' };
  });
}

function rmSync(path: string | URL, options?: { recursive?: boolean; force?: boolean }): void {
  const p = normalize(path);
  if (!entries.has(p)) {
    if (options?.force) return;
    throw fsError('ENOENT', 'rm', p);
  }
  for (const key of [...entries.keys()]) if (key === p || key.startsWith(`${p}/`)) entries.delete(key);
}

function renameSync(from: string | URL, to: string | URL): void {
  const entry = lookup(from, 'rename');
  writeFileSync(to, entry.data);
  entries.delete(normalize(from));
}

let tempCounter = 0;
function mkdtempSync(prefix: string): string {
  const path = `${prefix}${(++tempCounter).toString(36).padStart(6, '0')}`;
  mkdirSync(path, { recursive: true });
  return normalize(path);
}

/** A node:fs/promises FileHandle over one in-memory file (positioned reads for the safetensors reader). */
class MemoryFileHandle {
  constructor(
    private readonly path: string,
    truncate: boolean,
  ) {
    if (truncate) writeFileSync(path, new Uint8Array(0));
    else lookup(path, 'open');
  }
  async read(buffer: Uint8Array, offset = 0, length = buffer.length - offset, position: number | null = 0) {
    const data = lookup(this.path, 'read').data;
    const start = position ?? 0;
    const chunk = data.subarray(start, Math.min(start + length, data.length));
    buffer.set(chunk, offset);
    return { bytesRead: chunk.length, buffer };
  }
  async write(data: Uint8Array | string, offset = 0, length?: number) {
    const bytes =
      typeof data === 'string'
        ? toBytes(data)
        : data.subarray(offset, offset + (length ?? data.length - offset));
    const entry = lookup(this.path, 'write');
    const grown = new Uint8Array(entry.data.length + bytes.length);
    grown.set(entry.data);
    grown.set(bytes, entry.data.length);
    entry.data = grown;
    return { bytesWritten: bytes.length, buffer: data };
  }
  async writeFile(data: Uint8Array | string) {
    writeFileSync(this.path, typeof data === 'string' ? data : data);
  }
  async readFile(options?: Encoding) {
    return readFileSync(this.path, options);
  }
  async stat() {
    return statSync(this.path);
  }
  async sync() {}
  async datasync() {}
  async close() {}
}

const promisify =
  <A extends unknown[], R>(fn: (...args: A) => R) =>
  async (...args: A): Promise<R> =>
    fn(...args);

/** node:fs/promises, in memory. */
export const memoryFsPromises = {
  readFile: promisify(readFileSync),
  writeFile: promisify(writeFileSync),
  appendFile: async (path: string, data: string | Uint8Array) => {
    const before = entries.has(normalize(path)) ? (readFileSync(path) as Uint8Array) : new Uint8Array(0);
    const add = toBytes(data);
    const out = new Uint8Array(before.length + add.length);
    out.set(before);
    out.set(add, before.length);
    writeFileSync(path, out);
  },
  mkdir: promisify(mkdirSync),
  mkdtemp: promisify(mkdtempSync),
  readdir: promisify(readdirSync),
  stat: promisify(statSync),
  lstat: promisify(statSync),
  rm: promisify(rmSync),
  unlink: promisify((path: string) => rmSync(path)),
  rename: promisify(renameSync),
  copyFile: promisify((from: string, to: string) => writeFileSync(to, lookup(from, 'copyfile').data)),
  access: promisify((path: string) => {
    lookup(path, 'access');
  }),
  realpath: promisify((path: string) => {
    lookup(path, 'realpath');
    return normalize(path);
  }),
  open: async (path: string | URL, flags: string = 'r') =>
    new MemoryFileHandle(normalize(path), flags.includes('w')),
};

/** node:fs, in memory. */
export const memoryFs = {
  promises: memoryFsPromises,
  readFileSync,
  writeFileSync,
  existsSync: (path: string | URL) => entries.has(normalize(path)),
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
  lstatSync: statSync,
  rmSync,
  unlinkSync: (path: string) => rmSync(path),
  renameSync,
  realpathSync: (path: string) => normalize(path),
  constants: { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 },
};

/** Puts files into the in-memory file system under `dir` (created), e.g. a model folder fetched over HTTP. */
export function mountFiles(dir: string, files: Readonly<Record<string, Uint8Array | string>>): string {
  const root = normalize(dir);
  mkdirSync(root, { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(parent(`${root}/${name}`), { recursive: true });
    writeFileSync(`${root}/${name}`, data);
  }
  return root;
}

/** The files under `dir` (relative names → bytes), e.g. an adapter a saver wrote, for download. */
export function collectFiles(dir: string): Record<string, Uint8Array> {
  const root = normalize(dir);
  const out: Record<string, Uint8Array> = {};
  for (const [path, entry] of entries)
    if (entry.kind === 'file' && path.startsWith(`${root}/`))
      out[path.slice(root.length + 1)] = entry.data.slice();
  return out;
}
