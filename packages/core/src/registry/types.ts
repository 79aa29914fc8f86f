// Registry types. What `create` returns is typed per kind through `RegistryKinds`, which packages extend by
// declaration merging:
//   declare module '@vistune/core' { interface RegistryKinds { adapter: Adapter } }
// (inside core: `declare module '../registry/types.js'`). Kinds nobody typed produce `unknown`.
import type { z } from 'zod';

export const BUILTIN_REGISTRY_KINDS = [
  'backend',
  'model',
  'media',
  'llm',
  'encoder',
  'processor',
  'adapter',
  'head',
  'codec',
  'template',
  'dataset',
  'metric',
  'recipe',
  'task',
] as const;

/** kind → the type its entries produce; empty here, filled by declaration merging. */
// biome-ignore lint/suspicious/noEmptyInterface: extended by declaration merging in other packages
export interface RegistryKinds {}

/** The built-in kinds plus any kind a package declared in RegistryKinds. */
export type RegistryKind = (typeof BUILTIN_REGISTRY_KINDS)[number] | (keyof RegistryKinds & string);

/** What entries of kind K produce. */
export type Produced<K extends RegistryKind> = K extends keyof RegistryKinds ? RegistryKinds[K] : unknown;

/**
 * Passed to every factory. Packages may add fields by declaration merging; added fields must be optional,
 * since callers of `create` pass a partial context.
 */
export interface RegistryContext {
  /** The registry the entry was created from, so factories can create their sub-components. */
  registry: Registry;
  /** Config path of this component ('' at the root), the prefix for nested validation errors. */
  path: string;
}

/**
 * How an entry maps to Hugging Face configs: the type names it reads (config.json `model_type`,
 * `vision_config.model_type`, preprocessor_config.json `image_processor_type` …) and the field mapping.
 */
export interface HfBinding {
  /** HF type names this entry reads; a loader finds the entry with `registry.findHf(kind, type)`. */
  types: readonly string[];
  /** The HF (sub-)config → this entry's config without `type`; default: the HF object minus `model_type`. */
  fromHf?(hf: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /** This entry's validated config → the HF (sub-)config written on save (`model_type` is added: types[0]). */
  toHf?(config: Readonly<Record<string, unknown>>): Record<string, unknown>;
}

export interface RegistryEntry<K extends RegistryKind = RegistryKind, S extends z.ZodType = z.ZodType> {
  kind: K;
  name: string;
  /** One line for `vistune registry list`. */
  about: string;
  /** Present for entries that read or write Hugging Face configs. */
  hf?: HfBinding;
  /** Validates the config (with or without its `type` key) and fills defaults. */
  schema: S;
  create(config: z.output<S>, ctx: RegistryContext): Produced<K> | Promise<Produced<K>>;
  /** The package that registered the entry. */
  origin: string;
}

/** What `add` accepts: origin may be left to the registry (a plugin's registry fills in the plugin). */
export type RegistryEntryInput<K extends RegistryKind, S extends z.ZodType> = Omit<
  RegistryEntry<K, S>,
  'origin'
> & {
  origin?: string;
};

/** A component config: `type` names the entry, the rest is validated by its schema. */
export interface ComponentConfig {
  type: string;
  [key: string]: unknown;
}

export interface RegistryListing {
  kind: RegistryKind;
  name: string;
  about: string;
  origin: string;
  /** HF type names the entry reads (see HfBinding). */
  hfTypes?: readonly string[];
}

export interface CreateOptions extends Partial<Omit<RegistryContext, 'registry'>> {}

export interface Registry {
  /** Register an entry; a second entry with the same kind and name is an error naming both origins. */
  add<K extends RegistryKind, S extends z.ZodType>(entry: RegistryEntryInput<K, S>): void;
  has(kind: RegistryKind, name: string): boolean;
  /** The entry, or an error listing the available names of that kind. */
  get<K extends RegistryKind>(kind: K, name: string): RegistryEntry<K>;
  /** Entries (all kinds, or one), sorted by kind then name. */
  list(kind?: RegistryKind): RegistryListing[];
  /** The entry of `kind` whose HfBinding reads `hfType`, or undefined. */
  findHf<K extends RegistryKind>(kind: K, hfType: string): RegistryEntry<K> | undefined;
  /** Kinds that have at least one entry, built-in kinds first. */
  kinds(): RegistryKind[];
  /** Validate `config` against the entry named by `config.type` and return it with defaults filled. */
  validate<K extends RegistryKind>(
    kind: K,
    config: unknown,
    opts?: CreateOptions,
  ): { entry: RegistryEntry<K>; config: unknown };
  /** Validate, fill defaults, and build the component. */
  create<K extends RegistryKind>(kind: K, config: unknown, opts?: CreateOptions): Promise<Produced<K>>;
  /** As create, for factories that return synchronously (an async factory is an error). */
  createSync<K extends RegistryKind>(kind: K, config: unknown, opts?: CreateOptions): Produced<K>;
  /** A view of this registry whose `add` records `origin` for entries that do not name one. */
  withOrigin(origin: string): Registry;
}
