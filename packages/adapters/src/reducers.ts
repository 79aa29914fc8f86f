// Convolutional token reducers next to pixel_shuffle: both keep locality while cutting the patch grid to
// numQueries slots by adaptive average pooling (any input grid).
// - `c_abstractor` (Honeybee C-Abstractor): RegNet stage (depth bottlenecks) → adaptive average pool → RegNet
//   stage → MLP readout. A bottleneck is timm's RegBottleneck with group size 1 (depthwise 3×3), LayerNorm over
//   channels, SiLU and squeeze-excitation, as Honeybee builds it.
// - `ldp` (MobileVLM V2 LDP): MLP (Linear → GELU → Linear) → adaptive average pool (TokenDownLayer) → depthwise
//   3×3 conv with bias added back (PosInjectLayer, a positional encoding generator).
// Convolutions run as sums of shifted grid slices (pad + slice), whose gradients tfjs has on every backend.
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  gelu,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  matmul,
  silu,
  tf,
} from '@vistune/core';
import type { CAbstractorConfig, LdpConfig } from './config.js';
import { layoutGrid, ModuleGroup, ModuleList } from './layers.js';

/** Side of the square output grid of `numQueries` slots, or an error naming the adapter and the fix. */
function querySide(numQueries: number, who: string): number {
  const side = Math.round(Math.sqrt(numQueries));
  if (side * side !== numQueries)
    throw new Error(`${who}: numQueries ${numQueries} is not a square (use 4, 9, 16, …, 144)`);
  return side;
}

/** PyTorch adaptive_avg_pool1d windows: output i averages inputs [⌊i·n/m⌋, ⌈(i+1)·n/m⌉). */
function poolWindows(n: number, m: number): [number, number][] {
  return Array.from({ length: m }, (_, i) => [Math.floor((i * n) / m), Math.ceil(((i + 1) * n) / m)]);
}

/** [rows·cols → side²] adaptive average pooling as a fixed [side², rows·cols] matrix. */
export function adaptivePoolMatrix(grid: readonly [number, number], side: number): tf.Tensor2D {
  const [rows, cols] = grid;
  const values = new Float32Array(side * side * rows * cols);
  const rowWindows = poolWindows(rows, side);
  const colWindows = poolWindows(cols, side);
  rowWindows.forEach(([r0, r1], i) => {
    colWindows.forEach(([c0, c1], j) => {
      const weight = 1 / ((r1 - r0) * (c1 - c0));
      for (let r = r0; r < r1; r++)
        for (let c = c0; c < c1; c++) values[(i * side + j) * rows * cols + r * cols + c] = weight;
    });
  });
  return tf.tensor2d(values, [side * side, rows * cols]);
}

/** x [N, rows·cols, D] → [N, side², D] by adaptive average pooling over the grid. */
export function adaptiveAvgPool(x: tf.Tensor3D, grid: readonly [number, number], side: number): tf.Tensor3D {
  const [N] = x.shape;
  const pool = tf.tile(tf.expandDims(adaptivePoolMatrix(grid, side), 0), [N, 1, 1]);
  return matmul(pool, x) as tf.Tensor3D;
}

/** Depthwise 3×3 convolution, stride 1, zero padding 1, over a row-major grid: weight [9, D], optional bias. */
export class DepthwiseConv3x3 extends Module {
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly bias?: tf.Variable<tf.Rank.R1>;

  constructor(channels: number, init: Initializer, bias: boolean) {
    super();
    // Kaiming-uniform-like scale for a fan-in of 9 (PyTorch's Conv2d default bound 1/√fan_in).
    this.weight = this.param('weight', tf.mul(init.normal([9, channels], 1), 1 / 3) as tf.Tensor2D);
    if (bias) this.bias = this.param('bias', tf.zeros([channels]) as tf.Tensor1D);
  }

  /** x [N, rows·cols, D] → [N, rows·cols, D]. */
  forward(x: tf.Tensor3D, grid: readonly [number, number]): tf.Tensor3D {
    const [N, , D] = x.shape;
    const [rows, cols] = grid;
    const padded = tf.pad(tf.reshape(x, [N, rows, cols, D]), [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const terms: tf.Tensor[] = [];
    for (let dy = 0; dy < 3; dy++)
      for (let dx = 0; dx < 3; dx++) {
        const w = tf.slice(this.weight, [dy * 3 + dx, 0], [1, D]);
        terms.push(tf.mul(tf.slice(padded, [0, dy, dx, 0], [N, rows, cols, D]), w));
      }
    let y = tf.addN(terms);
    if (this.bias) y = tf.add(y, this.bias);
    return tf.reshape(y, [N, rows * cols, D]) as tf.Tensor3D;
  }
}

/** Squeeze-excitation: x · sigmoid(fc2(relu(fc1(mean over the grid)))) (timm SEModule, 1×1 convs as Linears). */
class SqueezeExcite extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(channels: number, reduced: number, init: Initializer) {
    super();
    this.fc1 = this.module('fc1', new Linear(channels, reduced, { init }));
    this.fc2 = this.module('fc2', new Linear(reduced, channels, { init }));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    const squeezed = tf.mean(x, 1, true);
    return tf.mul(x, tf.sigmoid(this.fc2.forward(tf.relu(this.fc1.forward(squeezed))))) as tf.Tensor3D;
  }
}

/** timm RegBottleneck (bottle ratio 1, group size 1): 1×1 → dw 3×3 → SE → 1×1, shortcut, SiLU. */
export class RegBottleneck extends Module {
  readonly conv1: Linear;
  readonly norm1: LayerNorm;
  readonly conv2: DepthwiseConv3x3;
  readonly norm2: LayerNorm;
  readonly se: SqueezeExcite;
  readonly conv3: Linear;
  readonly norm3: LayerNorm;
  readonly downsample?: Linear;
  readonly downsampleNorm?: LayerNorm;

  constructor(inDim: number, outDim: number, seRatio: number, init: Initializer) {
    super();
    // 1×1 convs without bias, each followed by a norm (timm ConvNormAct).
    this.conv1 = this.module('conv1', new Linear(inDim, outDim, { init, bias: false }));
    this.norm1 = this.module('norm1', new LayerNorm(outDim));
    this.conv2 = this.module('conv2', new DepthwiseConv3x3(outDim, init, false));
    this.norm2 = this.module('norm2', new LayerNorm(outDim));
    this.se = this.module('se', new SqueezeExcite(outDim, Math.max(1, Math.round(inDim * seRatio)), init));
    this.conv3 = this.module('conv3', new Linear(outDim, outDim, { init, bias: false }));
    this.norm3 = this.module('norm3', new LayerNorm(outDim));
    if (inDim !== outDim) {
      this.downsample = this.module('downsample', new Linear(inDim, outDim, { init, bias: false }));
      this.downsampleNorm = this.module('downsample_norm', new LayerNorm(outDim));
    }
  }

  forward(x: tf.Tensor3D, grid: readonly [number, number]): tf.Tensor3D {
    let h = silu(this.norm1.forward(this.conv1.forward(x))) as tf.Tensor3D;
    h = silu(this.norm2.forward(this.conv2.forward(h, grid))) as tf.Tensor3D;
    h = this.norm3.forward(this.conv3.forward(this.se.forward(h))) as tf.Tensor3D;
    const shortcut =
      this.downsample && this.downsampleNorm
        ? this.downsampleNorm.forward(this.downsample.forward(x))
        : x;
    return silu(tf.add(h, shortcut)) as tf.Tensor3D;
  }
}

/** A RegNet stage: `depth` bottlenecks, the first one changing the width. */
class RegStage extends Module {
  readonly blocks: readonly RegBottleneck[];
  constructor(inDim: number, outDim: number, depth: number, seRatio: number, init: Initializer) {
    super();
    const blocks = Array.from(
      { length: depth },
      (_, i) => new RegBottleneck(i === 0 ? inDim : outDim, outDim, seRatio, init),
    );
    this.blocks = this.module('blocks', new ModuleList(blocks)).items;
  }
  forward(x: tf.Tensor3D, grid: readonly [number, number]): tf.Tensor3D {
    return this.blocks.reduce((h, block) => block.forward(h, grid), x);
  }
}

/** Checks the features are a grid without CLS and returns it. */
function gridOf(layout: FeatureLayout, who: string): readonly [number, number] {
  if (layout.prefixTokens > 0)
    throw new Error(
      `${who}: the features start with ${layout.prefixTokens} non-grid token(s) (CLS): select them away with strategy 'default'`,
    );
  if ((layout.frames ?? 1) !== 1) throw new Error(`${who}: video features (frames > 1) are not supported`);
  return layoutGrid(layout, who);
}

/** `c_abstractor`: Honeybee's convolutional abstractor. */
export class CAbstractor extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly s1: RegStage;
  readonly s2: RegStage;
  readonly readout: readonly Linear[];
  private readonly side: number;

  constructor(
    readonly config: CAbstractorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.side = querySide(config.numQueries, 'c_abstractor');
    const hidden = config.hiddenSize ?? config.outDim;
    this.s1 = this.module('s1', new RegStage(config.inDim, hidden, config.depth, config.seRatio, init));
    this.s2 = this.module('s2', new RegStage(hidden, hidden, config.depth, config.seRatio, init));
    const readout = Array.from(
      { length: config.mlpDepth },
      (_, i) => new Linear(i === 0 ? hidden : config.outDim, config.outDim, { init }),
    );
    this.readout = this.module('readout', new ModuleList(readout)).items;
  }

  numSlots(layout: FeatureLayout): number {
    gridOf(layout, 'c_abstractor');
    return this.config.numQueries;
  }

  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const grid = gridOf(ctx.layout, 'c_abstractor');
    return tf.tidy(() => {
      const pooled = adaptiveAvgPool(this.s1.forward(features, grid), grid, this.side);
      let h: tf.Tensor = this.s2.forward(pooled, [this.side, this.side]);
      this.readout.forEach((layer, i) => {
        h = layer.forward(i === 0 ? h : silu(h));
      });
      return h as tf.Tensor3D;
    });
  }
}

/** `ldp`: MobileVLM V2's lightweight downsample projector. */
export class LdpProjector extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly mlp0: Linear;
  readonly mlp2: Linear;
  readonly peg: DepthwiseConv3x3;
  private readonly side: number;

  constructor(
    readonly config: LdpConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.side = querySide(config.numQueries, 'ldp');
    // MobileVLM's nn.Sequential(Linear, GELU, Linear): Linears at 0 and 2; the PEG conv at peg.0.
    const mlp = this.module('mlp', new ModuleGroup());
    this.mlp0 = mlp.add(0, new Linear(config.inDim, config.outDim, { init }));
    this.mlp2 = mlp.add(2, new Linear(config.outDim, config.outDim, { init }));
    this.peg = this.module('peg', new ModuleGroup()).add(0, new DepthwiseConv3x3(config.outDim, init, true));
  }

  numSlots(layout: FeatureLayout): number {
    gridOf(layout, 'ldp');
    return this.config.numQueries;
  }

  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const grid = gridOf(ctx.layout, 'ldp');
    return tf.tidy(() => {
      const h = this.mlp2.forward(gelu(this.mlp0.forward(features))) as tf.Tensor3D;
      const pooled = adaptiveAvgPool(h, grid, this.side);
      return tf.add(pooled, this.peg.forward(pooled, [this.side, this.side])) as tf.Tensor3D;
    });
  }
}
