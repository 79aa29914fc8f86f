// POSIX path helpers standing in for node:path in the browser build (paths in the in-memory file system).
export const sep = '/';
export const delimiter = ':';

export function normalize(path: string): string {
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..' && parts.length && parts[parts.length - 1] !== '..') parts.pop();
    else if (part !== '..' || !absolute) parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

export const join = (...parts: string[]): string => normalize(parts.filter(Boolean).join('/'));
export const isAbsolute = (path: string): boolean => path.startsWith('/');
export const resolve = (...parts: string[]): string => {
  let out = '';
  for (const part of parts) out = isAbsolute(part) ? part : `${out}/${part}`;
  return normalize(isAbsolute(out) ? out : `/${out}`);
};

/** The path without trailing slashes (the root stays '/'). */
function trimmed(path: string): string {
  const out = path.replace(/\/+$/, '');
  return out || (path.startsWith('/') ? '/' : '');
}

// dirname / basename / extname do not normalize, as node:path does not.
export function dirname(path: string): string {
  const p = trimmed(path);
  const cut = p.lastIndexOf('/');
  if (cut < 0) return '.';
  return cut === 0 ? '/' : p.slice(0, cut);
}

export function basename(path: string, ext?: string): string {
  const p = trimmed(path);
  const base = p === '/' ? '' : p.slice(p.lastIndexOf('/') + 1);
  return ext && base.endsWith(ext) && base !== ext ? base.slice(0, -ext.length) : base;
}

export function extname(path: string): string {
  const base = basename(path);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot);
}

export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}

export function parse(path: string) {
  const base = basename(path);
  const ext = extname(path);
  return {
    root: isAbsolute(path) ? '/' : '',
    dir: dirname(path),
    base,
    ext,
    name: base.slice(0, base.length - ext.length),
  };
}

export const posix = {
  sep,
  delimiter,
  normalize,
  join,
  isAbsolute,
  resolve,
  dirname,
  basename,
  extname,
  relative,
  parse,
};
export default posix;
