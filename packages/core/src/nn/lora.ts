// LoRA (Hu et al. 2021) as PEFT does it: a frozen Linear gets y = base(x) + (alpha/r)·B(A(dropout(x))),
// A [r, in] kaiming-uniform, B [out, r] zeros (so training starts from the base model), parameters named
// `<linear>.lora_A.weight` / `<linear>.lora_B.weight`; adapters saved as PEFT's adapter_model.safetensors.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { readJsonFile } from '../io/json.js';
import { loadSafetensors } from '../io/safetensors-read.js';
import { saveSafetensors } from '../io/safetensors-write.js';
import { Initializer } from './init.js';
import { Linear, type LinearBranch } from './linear.js';
import { type Module, nameMatcher } from './module.js';
import { Rng } from './rng.js';

export interface LoraConfig {
  /** Rank of the update B·A. */
  r: number;
  /** Scale numerator: the update is multiplied by alpha / r. */
  alpha: number;
  /** Dropout on the branch input during training (PEFT lora_dropout); default 0. */
  dropout?: number;
}

export interface LoraOptions extends LoraConfig {
  /** Globs on module paths (`*` spans dots), e.g. `llm.model.layers.*_proj`; each must match a Linear. */
  targets: readonly string[];
  /** Seed of the A initialisation and of the dropout masks; default 0. */
  seed?: number;
}

/**
 * Dropout mask seeds for the branches of one applyLora call, derived from (seed, call count) rather than a
 * running generator, so `calls` is the whole state a resumed run needs to draw the same masks.
 */
export class LoraDropoutStream {
  constructor(
    readonly seed: number,
    public calls = 0,
  ) {}

  nextSeed(): number {
    this.calls++;
    return new Rng(((this.seed >>> 0) ^ Math.imul(this.calls, 0x9e3779b1)) >>> 0).nextUint32();
  }
}

/** The LoRA term of one Linear; its lora_A / lora_B Linears become children of the wrapped Linear. */
export class LoraBranch implements LinearBranch {
  readonly loraA: Linear;
  readonly loraB: Linear;
  readonly scaling: number;
  readonly modules: readonly (readonly [string, Module])[];

  constructor(
    inFeatures: number,
    outFeatures: number,
    readonly config: Required<LoraConfig>,
    rng: Rng,
    private readonly dropoutSeeds: LoraDropoutStream,
  ) {
    const zeros = new Initializer({ random: false });
    this.loraA = new Linear(inFeatures, config.r, { init: zeros, bias: false });
    this.loraB = new Linear(config.r, outFeatures, { init: zeros, bias: false });
    // PEFT: kaiming_uniform_(a=√5) on A, i.e. U(-1/√in, 1/√in).
    const bound = 1 / Math.sqrt(inFeatures);
    const values = new Float32Array(config.r * inFeatures);
    for (let i = 0; i < values.length; i++) values[i] = (2 * rng.nextFloat() - 1) * bound;
    tf.tidy(() => this.loraA.weight.assign(tf.tensor2d(values, [config.r, inFeatures])));
    this.scaling = config.alpha / config.r;
    this.modules = [
      ['lora_A', this.loraA],
      ['lora_B', this.loraB],
    ];
  }

  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const p = this.config.dropout;
    const input = training && p > 0 ? tf.dropout(x, p, undefined, this.dropoutSeeds.nextSeed()) : x;
    return tf.mul(this.loraB.forward(this.loraA.forward(input)), this.scaling);
  }

  /** scaling · B A, the [out, in] update merging adds to the base weight. */
  delta(): tf.Tensor2D {
    return tf.tidy(
      () => tf.mul(tf.matMul(this.loraB.weight, this.loraA.weight), this.scaling) as tf.Tensor2D,
    );
  }
}

/** What applyLora did: the wrapped module paths and the dropout stream (its `calls` is the resumable state). */
export interface AppliedLora {
  paths: string[];
  config: Required<LoraConfig>;
  dropout: LoraDropoutStream;
}

/** Every Linear under `root` with its dotted path, in registration order (LoRA's own Linears excluded). */
export function namedLinears(root: Module, prefix = ''): [string, Linear][] {
  const out: [string, Linear][] = [];
  for (const [name, child] of root.namedChildren()) {
    const path = prefix + name;
    if (child instanceof Linear) out.push([path, child]);
    else out.push(...namedLinears(child, `${path}.`));
  }
  return out;
}

function checkConfig(cfg: LoraConfig): Required<LoraConfig> {
  const dropout = cfg.dropout ?? 0;
  if (!(Number.isInteger(cfg.r) && cfg.r > 0))
    throw new Error(`LoRA: r must be a positive integer, got ${cfg.r}`);
  if (!(cfg.alpha > 0)) throw new Error(`LoRA: alpha must be > 0, got ${cfg.alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${dropout}`);
  return { r: cfg.r, alpha: cfg.alpha, dropout };
}

function wrap(linears: readonly [string, Linear][], config: Required<LoraConfig>, seed: number): AppliedLora {
  const rng = new Rng(seed);
  const dropout = new LoraDropoutStream(seed);
  for (const [path, linear] of linears) {
    if (linear.branch) throw new Error(`applyLora: ${path} already has a LoRA branch (merge it first)`);
  }
  for (const [, linear] of linears) {
    linear.weight.trainable = false;
    if (linear.bias) linear.bias.trainable = false;
    linear.attachBranch(new LoraBranch(linear.inFeatures, linear.outFeatures, config, rng, dropout));
  }
  return { paths: linears.map(([p]) => p), config, dropout };
}

function listSome(names: readonly string[], n = 12): string {
  if (names.length === 0) return '(none)';
  return names.length <= n ? names.join(', ') : `${names.slice(0, n).join(', ')}, … (${names.length} in all)`;
}

/**
 * Wraps every Linear whose module path matches a target glob with a LoRA branch; base weights are frozen,
 * lora_A / lora_B trainable. A pattern that matches no Linear is an error listing some Linear paths.
 */
export function applyLora(model: Module, opts: LoraOptions): AppliedLora {
  const config = checkConfig(opts);
  if (opts.targets.length === 0)
    throw new Error('applyLora: targets is empty: give module path globs such as "*.q_proj"');
  const linears = namedLinears(model);
  const unmatched = opts.targets.filter((t) => {
    const match = nameMatcher([t]);
    return !linears.some(([path]) => match(path));
  });
  if (unmatched.length) {
    throw new Error(
      `applyLora: target ${unmatched.map((t) => `"${t}"`).join(', ')} matches no Linear module ` +
        `(globs on dotted module paths, * spans dots). Linear modules: ${listSome(linears.map(([p]) => p))}`,
    );
  }
  const match = nameMatcher(opts.targets);
  return wrap(
    linears.filter(([path]) => match(path)),
    config,
    opts.seed ?? 0,
  );
}

/** Linears of the model that carry a LoRA branch, with their paths. */
export function loraLinears(model: Module): [string, Linear, LoraBranch][] {
  const out: [string, Linear, LoraBranch][] = [];
  for (const [path, linear] of namedLinears(model)) {
    if (linear.branch instanceof LoraBranch) out.push([path, linear, linear.branch]);
  }
  return out;
}

/** Folds every LoRA branch into its base weight (W += alpha/r · B A) and removes it; returns the paths. */
export function mergeLora(model: Module): string[] {
  const merged: string[] = [];
  for (const [path, linear, branch] of loraLinears(model)) {
    const delta = branch.delta();
    tf.tidy(() => linear.weight.assign(tf.add(linear.weight, delta)));
    delta.dispose();
    linear.detachBranch();
    branch.loraA.dispose();
    branch.loraB.dispose();
    merged.push(path);
  }
  return merged;
}

export interface LoraAdapterNaming {
  /**
   * Checkpoint name of a model parameter (e.g. llavaCheckpointName), applied to `<path>.lora_A.weight`
   * before PEFT's `base_model.model.` prefix; default: the model's own names.
   */
  checkpointName?: (paramName: string) => string;
}

export interface SaveLoraAdapterOptions extends LoraAdapterNaming {
  /** adapter_config.json base_model_name_or_path. */
  baseModel?: string;
}

const PEFT_PREFIX = 'base_model.model.';
const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const ADAPTER_CONFIG = 'adapter_config.json';

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

/** PEFT's target_modules: the short names when they select exactly the wrapped Linears, else the full module names. */
function targetModules(
  model: Module,
  wrapped: readonly string[],
  moduleName: (p: string) => string,
): string[] {
  const suffixes = [...new Set(wrapped.map(lastSegment))].sort();
  const selected = namedLinears(model).filter(([p]) => suffixes.includes(lastSegment(p)));
  if (selected.length === wrapped.length) return suffixes;
  return wrapped.map(moduleName);
}

/** Writes adapter_model.safetensors + adapter_config.json in PEFT's format (loadable with PeftModel.from_pretrained). */
export async function saveLoraAdapter(
  model: Module,
  dir: string,
  opts: SaveLoraAdapterOptions = {},
): Promise<void> {
  const wrapped = loraLinears(model);
  if (wrapped.length === 0)
    throw new Error('saveLoraAdapter: the model has no LoRA branches (applyLora first)');
  const configs = new Set(wrapped.map(([, , b]) => JSON.stringify(b.config)));
  if (configs.size > 1) {
    throw new Error(
      `saveLoraAdapter: branches have different r/alpha/dropout (${[...configs].join(' vs ')}): save them separately`,
    );
  }
  const toCheckpoint = opts.checkpointName ?? ((n: string) => n);
  const tensors = new Map<string, tf.Tensor>();
  for (const [path, , branch] of wrapped) {
    tensors.set(PEFT_PREFIX + toCheckpoint(`${path}.lora_A.weight`), branch.loraA.weight);
    tensors.set(PEFT_PREFIX + toCheckpoint(`${path}.lora_B.weight`), branch.loraB.weight);
  }
  const { r, alpha, dropout } = wrapped[0][2].config;
  const moduleName = (p: string) => toCheckpoint(`${p}.weight`).slice(0, -'.weight'.length);
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: opts.baseModel ?? null,
    r,
    lora_alpha: alpha,
    lora_dropout: dropout,
    target_modules: targetModules(
      model,
      wrapped.map(([p]) => p),
      moduleName,
    ),
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, ADAPTER_WEIGHTS), tensors);
  await writeFile(join(dir, ADAPTER_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
}

const adapterConfigSchema = z.looseObject({
  peft_type: z.literal('LORA', { message: 'expected "LORA" (only LoRA adapters are supported)' }),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).max(0.999).default(0),
  use_rslora: z
    .literal(false, { message: 'rsLoRA scaling (alpha/√r) is not supported: retrain with use_rslora false' })
    .optional(),
  use_dora: z.literal(false, { message: 'DoRA adapters are not supported' }).optional(),
});

/**
 * Loads a PEFT LoRA adapter onto a base model: wraps exactly the Linears the file has weights for (or reuses
 * branches already there) and copies lora_A / lora_B. Tensors that fit no Linear of the model are an error.
 */
export async function loadLoraAdapter(
  model: Module,
  dir: string,
  opts: LoraAdapterNaming = {},
): Promise<AppliedLora> {
  const configPath = join(dir, ADAPTER_CONFIG);
  const cfg = await readJsonFile(configPath, 'LoRA adapter config', {
    hint: 'expected a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
    schema: adapterConfigSchema,
  });
  const config = checkConfig({ r: cfg.r, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout });
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  const weights = await loadSafetensors(weightsPath);
  try {
    const toCheckpoint = opts.checkpointName ?? ((n: string) => n);
    const fileName = (path: string, ab: 'A' | 'B') => PEFT_PREFIX + toCheckpoint(`${path}.lora_${ab}.weight`);
    const targets = namedLinears(model).filter(([path]) => weights.has(fileName(path, 'A')));
    const used = new Set(targets.flatMap(([path]) => [fileName(path, 'A'), fileName(path, 'B')]));
    const unknown = [...weights.keys()].filter((n) => !used.has(n));
    if (unknown.length || targets.length === 0) {
      throw new Error(
        `${weightsPath}: ${targets.length === 0 ? 'no tensor fits' : `tensors ${listSome(unknown, 6)} fit no`} Linear of the model ` +
          `(expected names like ${fileName(namedLinears(model)[0]?.[0] ?? 'layer', 'A')}; pass checkpointName if the base model's checkpoint names differ)`,
      );
    }
    const fresh = targets.filter(([, linear]) => !linear.branch);
    const applied = fresh.length
      ? wrap(fresh, config, 0)
      : { paths: [], config, dropout: new LoraDropoutStream(0) };
    const problems: string[] = [];
    for (const [path, linear] of targets) {
      const branch = linear.branch;
      if (!(branch instanceof LoraBranch) || branch.config.r !== config.r) {
        problems.push(`${path}: the model already has a different branch there`);
        continue;
      }
      for (const [ab, target] of [
        ['A', branch.loraA.weight],
        ['B', branch.loraB.weight],
      ] as const) {
        const t = weights.get(fileName(path, ab));
        if (!t || !tf.util.arraysEqual(t.shape, target.shape))
          problems.push(
            `${fileName(path, ab)}: expected [${target.shape}], got ${t ? `[${t.shape}]` : 'nothing'}`,
          );
        else tf.tidy(() => target.assign((t.dtype === 'float32' ? t : tf.cast(t, 'float32')) as tf.Tensor2D));
      }
    }
    if (problems.length)
      throw new Error(`${weightsPath} does not fit the model:\n  ${problems.join('\n  ')}`);
    return { ...applied, paths: targets.map(([p]) => p) };
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}
