// Globals Node code reads at module scope, for the browser build (esbuild `inject`): `process.env` lookups
// see an empty environment, and the few Buffer helpers used at load time return Uint8Arrays.
export const process = {
  env: {} as Record<string, string | undefined>,
  argv: [] as string[],
  platform: 'browser',
  versions: {} as Record<string, string>,
  exitCode: undefined as number | undefined,
  cwd: () => '/',
  on: () => process,
  once: () => process,
  off: () => process,
  emitWarning: () => undefined,
};

const encoder = new TextEncoder();

export const Buffer = {
  from(value: string | ArrayLike<number> | ArrayBuffer): Uint8Array {
    if (typeof value === 'string') return encoder.encode(value);
    return value instanceof ArrayBuffer ? new Uint8Array(value) : Uint8Array.from(value);
  },
  alloc: (size: number) => new Uint8Array(size),
  concat(list: readonly Uint8Array[]): Uint8Array {
    const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of list) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  },
  isBuffer: (value: unknown) => value instanceof Uint8Array,
};
