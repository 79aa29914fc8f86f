// The component registry: kind + name → { schema, factory }, with config validation that names config paths.
import { z } from 'zod';
import type {
  CreateOptions,
  Produced,
  Registry,
  RegistryContext,
  RegistryEntry,
  RegistryEntryInput,
  RegistryKind,
  RegistryListing,
} from './types.js';
import { BUILTIN_REGISTRY_KINDS } from './types.js';
import { formatConfigPath, formatZodIssues } from './zod-issues.js';

type AnyEntry = RegistryEntry<RegistryKind, z.ZodType>;

/** Built-in kinds in their declared order, then the others. */
function kindOrder(kind: string): number {
  const i = (BUILTIN_REGISTRY_KINDS as readonly string[]).indexOf(kind);
  return i < 0 ? BUILTIN_REGISTRY_KINDS.length : i;
}
type Store = Map<string, Map<string, AnyEntry>>;

const PLUGIN_HINT =
  'components from other packages become available once their plugin is loaded (config `plugins:`)';

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment), for "did you mean". */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function suggestion(name: string, names: string[]): string {
  const close = names
    .map((n) => ({ n, d: editDistance(name.toLowerCase(), n.toLowerCase()) }))
    .filter(({ n, d }) => d <= Math.max(1, Math.floor(n.length / 3)))
    .sort((x, y) => x.d - y.d);
  return close.length ? ` Did you mean '${close[0].n}'?` : '';
}

/** A plain z.object silently drops unknown keys, so a typo ('outdim') would fall back to a default: make it strict. */
function strictIfPlainObject(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodObject && schema._zod.def.catchall === undefined ? schema.strict() : schema;
}

/** Whether the schema itself declares `type` (else `type` is removed before validation). */
function schemaHasType(schema: z.ZodType): boolean {
  return schema instanceof z.ZodObject && 'type' in schema.shape;
}

class ComponentRegistry implements Registry {
  constructor(
    private readonly store: Store,
    private readonly defaultOrigin: string,
  ) {}

  add<K extends RegistryKind, S extends z.ZodType>(input: RegistryEntryInput<K, S>): void {
    const origin = input.origin ?? this.defaultOrigin;
    if (!input.name || typeof input.name !== 'string')
      throw new Error(`registry.add (${origin}): entry of kind '${input.kind}' has no name`);
    if (!(input.schema instanceof z.ZodType)) {
      throw new Error(
        `registry.add (${origin}): ${input.kind} '${input.name}' needs a zod 4 schema (import { z } from 'zod')`,
      );
    }
    let byName = this.store.get(input.kind);
    if (!byName) {
      byName = new Map();
      this.store.set(input.kind, byName);
    }
    const existing = byName.get(input.name);
    if (existing) {
      throw new Error(
        `registry: ${input.kind} '${input.name}' is already registered by ${existing.origin}; ` +
          `${origin} tried to register it again (rename one, or load only one of the two)`,
      );
    }
    if (input.hf) {
      for (const hfType of input.hf.types) {
        const other = this.findHf(input.kind, hfType);
        if (other)
          throw new Error(
            `registry: ${input.kind} '${other.name}' (${other.origin}) already reads HF type '${hfType}'; ` +
              `${origin} tried to register ${input.kind} '${input.name}' for it too (load only one of the two)`,
          );
      }
    }
    const entry = { ...input, origin, schema: strictIfPlainObject(input.schema) } as AnyEntry;
    byName.set(input.name, entry);
  }

  findHf<K extends RegistryKind>(kind: K, hfType: string): RegistryEntry<K> | undefined {
    for (const entry of this.store.get(kind)?.values() ?? [])
      if (entry.hf?.types.includes(hfType)) return entry as RegistryEntry<K>;
    return undefined;
  }

  kinds(): RegistryKind[] {
    return [...this.store.keys()].sort(
      (a, b) => kindOrder(a) - kindOrder(b) || a.localeCompare(b),
    ) as RegistryKind[];
  }

  has(kind: RegistryKind, name: string): boolean {
    return this.store.get(kind)?.has(name) ?? false;
  }

  get<K extends RegistryKind>(kind: K, name: string): RegistryEntry<K> {
    const entry = this.store.get(kind)?.get(name);
    if (entry) return entry as RegistryEntry<K>;
    const names = [...(this.store.get(kind)?.keys() ?? [])].sort();
    if (!names.length) {
      const kinds = [...new Set([...BUILTIN_REGISTRY_KINDS, ...this.store.keys()])].join(', ');
      throw new Error(
        `registry: no ${kind} '${name}': nothing of kind '${kind}' is registered (kinds: ${kinds}); ${PLUGIN_HINT}`,
      );
    }
    throw new Error(
      `registry: no ${kind} named '${name}'. Available: ${names.join(', ')}.${suggestion(name, names)} ${PLUGIN_HINT}`,
    );
  }

  list(kind?: RegistryKind): RegistryListing[] {
    const kinds = kind ? [kind] : this.kinds();
    return kinds.flatMap((k) =>
      [...(this.store.get(k)?.values() ?? [])]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(({ kind: entryKind, name, about, origin, hf }) => ({
          kind: entryKind,
          name,
          about,
          origin,
          ...(hf ? { hfTypes: hf.types } : {}),
        })),
    );
  }

  validate<K extends RegistryKind>(
    kind: K,
    config: unknown,
    opts: CreateOptions = {},
  ): { entry: RegistryEntry<K>; config: unknown } {
    const path = opts.path ?? '';
    const typePath = formatConfigPath(['type'], path);
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new Error(
        `invalid ${kind} config at ${formatConfigPath([], path)}: expected an object with a 'type' key, got ${JSON.stringify(config)}`,
      );
    }
    const { type, ...rest } = config as Record<string, unknown>;
    if (typeof type !== 'string') {
      const names = [...(this.store.get(kind)?.keys() ?? [])].sort().join(', ') || 'none registered';
      throw new Error(`invalid ${kind} config: ${typePath}: missing ${kind} type (one of: ${names})`);
    }
    let entry: RegistryEntry<K>;
    try {
      entry = this.get(kind, type);
    } catch (err) {
      throw new Error(
        `invalid ${kind} config: ${typePath}: ${(err as Error).message.replace(/^registry: /, '')}`,
      );
    }
    const parsed = entry.schema.safeParse(schemaHasType(entry.schema) ? config : rest);
    if (!parsed.success) {
      throw new Error(
        `invalid ${kind} '${type}' config:\n  ${formatZodIssues(parsed.error, path).join('\n  ')}`,
      );
    }
    return { entry, config: parsed.data };
  }

  private context(opts: CreateOptions): RegistryContext {
    return { ...opts, registry: this, path: opts.path ?? '' };
  }

  async create<K extends RegistryKind>(
    kind: K,
    config: unknown,
    opts: CreateOptions = {},
  ): Promise<Produced<K>> {
    const { entry, config: parsed } = this.validate(kind, config, opts);
    return await entry.create(parsed, this.context(opts));
  }

  createSync<K extends RegistryKind>(kind: K, config: unknown, opts: CreateOptions = {}): Produced<K> {
    const { entry, config: parsed } = this.validate(kind, config, opts);
    const made = entry.create(parsed, this.context(opts));
    if (made instanceof Promise) {
      made.catch(() => undefined); // the caller gets the error below, not an unhandled rejection
      throw new Error(
        `registry: ${kind} '${entry.name}' (${entry.origin}) is created asynchronously: use registry.create`,
      );
    }
    return made;
  }

  withOrigin(origin: string): Registry {
    return new ComponentRegistry(this.store, origin);
  }
}

/** A fresh, empty registry; `origin` is recorded for entries added directly that name none. */
export function createRegistry(opts: { origin?: string } = {}): Registry {
  return new ComponentRegistry(new Map(), opts.origin ?? '(app)');
}
