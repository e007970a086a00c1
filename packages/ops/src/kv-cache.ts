import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';
import { attentionBias, mergeHeads, shareHeads, softcapped, splitHeads, windowBias } from './attention';
import { hasKernel, KERNELS, runKernel } from './kernels';

export interface KvCacheOptions {
  readonly batchSize: number;
  /** Most tokens any row holds (prompt and generated, real tokens only). */
  readonly capacity: number;
  readonly layers: number;
  /** Query heads. */
  readonly heads: number;
  /** Key/value heads held in the cache (grouped-query attention). Default: heads. */
  readonly kvHeads?: number;
  readonly headSize: number;
  /** Scale of the attention scores. Default 1/sqrt(headSize). */
  readonly scale?: number;
  /** Soft-capping of the scores (cap * tanh(s / cap)); 0 or absent: off. */
  readonly softcap?: number;
  /** Per layer, a sliding window (0: every earlier token). Default: none. */
  readonly windows?: readonly number[];
}

/** One decode step over S columns, as `KvCache.advance` hands it to the model. */
export interface DecodeStep {
  readonly columns: number;
  /** (B * S) position of each slot: the row's length before the step plus the real tokens before it. */
  readonly positions: Int32Array;
  /** Attention of the step's tokens in `layer`: packed qkv (B*S, (heads + 2 kvHeads) headSize) → (B*S, heads headSize); stores the layer's keys and values. */
  attend(layer: number, qkv: tf.Tensor2D): tf.Tensor2D;
  /** For a kernel that runs every layer in one call (`transformerDecode`): the native cache's tensors. */
  readonly native?: NativeStepTensors;
}

/** What a many-step kernel needs from the native cache. */
export interface NativeLoopTensors {
  readonly keys: readonly tf.Tensor[];
  readonly values: readonly tf.Tensor[];
  readonly lengths: readonly number[];
  commit(lengths: readonly number[]): void;
}

/** What a whole-network decode kernel needs from the native cache for one step. */
export interface NativeStepTensors {
  /** (B) int32 real tokens per row before the step. */
  readonly lengths: tf.Tensor;
  /** (B, S) 1 for real slots. */
  readonly mask: tf.Tensor;
  /** Per layer, written in place: keys (B, kvHeads, headSize, capacity), values (B, kvHeads, capacity, headSize). */
  readonly keys: readonly tf.Tensor[];
  readonly values: readonly tf.Tensor[];
}

/**
 * The keys and values of a batched incremental decode, with a length per row. A step's real slots
 * (mask 1) are appended to their row in order; padding slots take no room and are not attended, so
 * rows that advance by different amounts (SKD accepts different numbers of drafts per row) share
 * one cache, and rolling a row back only shortens it.
 */
export abstract class KvCache {
  private readonly rowLengths: number[];

  constructor(readonly options: KvCacheOptions) {
    const { batchSize, capacity, layers, heads, headSize } = options;
    const kvHeads = options.kvHeads ?? heads;
    for (const [name, value] of Object.entries({ batchSize, capacity, layers, heads, kvHeads, headSize })) {
      if (!Number.isInteger(value) || value < 1) throw new SkdError(`KV cache ${name} must be an integer >= 1, got ${value}`);
    }
    if (heads % kvHeads !== 0) throw new SkdError(`KV cache heads ${heads} must be a multiple of kvHeads ${kvHeads}`);
    if (options.windows && options.windows.length !== layers)
      throw new SkdError(`KV cache windows must have one entry per layer (${layers}), got ${options.windows.length}`);
    this.rowLengths = new Array<number>(batchSize).fill(0);
  }

  get batchSize(): number {
    return this.options.batchSize;
  }

  get capacity(): number {
    return this.options.capacity;
  }

  /** Key/value heads per layer. */
  get kvHeads(): number {
    return this.options.kvHeads ?? this.options.heads;
  }

  /** The attention settings of `layer`: score scale, soft-cap and sliding window (0: off). */
  protected attention(layer: number): { heads: number; kvHeads: number; scale: number; softcap: number; window: number } {
    const { heads, headSize } = this.options;
    return {
      heads,
      kvHeads: this.kvHeads,
      scale: this.options.scale ?? 1 / Math.sqrt(headSize),
      softcap: this.options.softcap ?? 0,
      window: this.options.windows?.[layer] ?? 0,
    };
  }

  /** Real tokens held per row. */
  get lengths(): readonly number[] {
    return this.rowLengths;
  }

  /**
   * Runs one step of S columns (mask (B * S): 1 real, 0 padding; absent: all real). `run` gets the
   * slot positions and the attention per layer; when it returns, each row has grown by its real
   * slots. When it throws, the cache is as before.
   */
  advance<T>(mask: ArrayLike<number> | undefined, columns: number, run: (step: DecodeStep) => T): T {
    const B = this.batchSize;
    if (!Number.isInteger(columns) || columns < 1) throw new SkdError(`a decode step needs at least one column, got ${columns}`);
    if (mask && mask.length !== B * columns) throw new SkdError(`decode mask has ${mask.length} entries, expected ${B} rows x ${columns} columns`);
    const real = Float32Array.from({ length: B * columns }, (_, i) => (mask ? ((mask[i] as number) !== 0 ? 1 : 0) : 1));
    const positions = new Int32Array(B * columns);
    const added = new Array<number>(B).fill(0);
    for (let b = 0; b < B; b++) {
      const start = this.rowLengths[b] as number;
      for (let j = 0; j < columns; j++) {
        positions[b * columns + j] = Math.min(start + (added[b] as number), this.capacity - 1);
        added[b] = (added[b] as number) + (real[b * columns + j] as number);
      }
      if (start + (added[b] as number) > this.capacity) {
        throw new SkdError(`row ${b}: ${added[b]} more tokens exceed the ${this.capacity} the decode state was started for (it holds ${start})`);
      }
    }
    const step = this.beginStep(real, columns);
    try {
      const native = this.nativeTensors(step);
      const result = run({ columns, positions, attend: (layer, qkv) => this.attendStep(step, layer, qkv), ...(native ? { native } : {}) });
      this.commitStep(step);
      added.forEach((n, b) => (this.rowLengths[b] = (this.rowLengths[b] as number) + n));
      return result;
    } finally {
      this.endStep(step);
    }
  }

  /** Keeps the first keep[b] tokens of row b (undefined: the whole row), e.g. the accepted part of a draft. */
  rollback(keep: readonly (number | undefined)[]): void {
    if (keep.length !== this.batchSize) throw new SkdError(`rollback needs one entry per row (${this.batchSize}), got ${keep.length}`);
    keep.forEach((n, b) => {
      if (n === undefined) return;
      const length = this.rowLengths[b] as number;
      if (!Number.isInteger(n) || n < 0 || n > length) throw new SkdError(`cannot roll row ${b} back to ${n} tokens: it holds ${length}`);
    });
    this.truncateRows(keep);
    keep.forEach((n, b) => {
      if (n !== undefined) this.rowLengths[b] = n;
    });
  }

  /**
   * For a kernel that runs many decode steps in one call (`transformerGenerate`): the native
   * cache's tensors, and `commit` to record the lengths the rows reached. Undefined for the
   * portable cache.
   */
  nativeLoop(): NativeLoopTensors | undefined {
    return undefined;
  }

  /** Sets every row's length after a native loop wrote its tokens (each within the capacity). */
  protected setLengths(lengths: readonly number[]): void {
    if (lengths.length !== this.batchSize || lengths.some((n, b) => !Number.isInteger(n) || n < (this.rowLengths[b] as number) || n > this.capacity)) {
      throw new SkdError(`a native loop returned lengths [${lengths.join(', ')}] for rows holding [${this.rowLengths.join(', ')}] of ${this.capacity}`);
    }
    lengths.forEach((n, b) => (this.rowLengths[b] = n));
  }

  abstract dispose(): void;
  protected nativeTensors(_step: unknown): NativeStepTensors | undefined {
    return undefined;
  }
  protected abstract beginStep(mask: Float32Array, columns: number): unknown;
  protected abstract attendStep(step: unknown, layer: number, qkv: tf.Tensor2D): tf.Tensor2D;
  protected abstract commitStep(step: unknown): void;
  protected abstract endStep(step: unknown): void;
  protected abstract truncateRows(keep: readonly (number | undefined)[]): void;
}

/** The in-place cache when the backend has the kernel (wasm with @skd/native, webgpu with skd's programs), else the tensor one. */
export function createKvCache(options: KvCacheOptions): KvCache {
  return hasKernel(KERNELS.cachedAttention) ? new NativeKvCache(options) : new TensorKvCache(options);
}

/**
 * Preallocated keys (B, kvHeads, headSize, capacity: transposed, for the kernel's vectorised scores)
 * and values (B, kvHeads, capacity, headSize) per layer, written in place by the `SkdCachedAttention`
 * kernel: inputs { qkv, keys, values, lengths (B int32), mask (B, S) }, attrs { heads, kvHeads, scale, softcap, window } →
 * (B*S, d). Nothing is copied per step, and rollback only moves lengths.
 */
export class NativeKvCache extends KvCache {
  private readonly keys: tf.Tensor[];
  private readonly values: tf.Tensor[];

  constructor(options: KvCacheOptions) {
    super(options);
    const { batchSize: B, capacity, headSize } = options;
    const H = this.kvHeads;
    // Fills, not tf.zeros: a backend's Fill kernel can take the memory from its pool (the native
    // backend's does), where tf.zeros allocates outside any kernel, afresh for every generation.
    this.keys = Array.from({ length: options.layers }, () => tf.keep(tf.fill([B, H, headSize, capacity], 0)));
    this.values = Array.from({ length: options.layers }, () => tf.keep(tf.fill([B, H, capacity, headSize], 0)));
  }

  protected beginStep(mask: Float32Array, columns: number): tf.Tensor[] {
    return [tf.tensor1d(Int32Array.from(this.lengths), 'int32'), tf.tensor2d(mask, [this.batchSize, columns])];
  }

  override nativeLoop(): NativeLoopTensors {
    return { keys: this.keys, values: this.values, lengths: [...this.lengths], commit: (lengths) => this.setLengths(lengths) };
  }

  protected override nativeTensors(step: unknown): NativeStepTensors {
    const [lengths, mask] = step as [tf.Tensor, tf.Tensor];
    return { lengths, mask, keys: this.keys, values: this.values };
  }

  protected attendStep(step: unknown, layer: number, qkv: tf.Tensor2D): tf.Tensor2D {
    const [lengths, mask] = step as [tf.Tensor, tf.Tensor];
    return runKernel<tf.Tensor2D>(
      KERNELS.cachedAttention,
      { qkv, keys: this.keys[layer] as tf.Tensor, values: this.values[layer] as tf.Tensor, lengths, mask },
      this.attention(layer),
    );
  }

  protected commitStep(): void {
    // Written in place during the step: nothing to adopt.
  }

  protected endStep(step: unknown): void {
    tf.dispose(step as tf.Tensor[]);
  }

  protected truncateRows(): void {
    // Slots past a row's length are never read: the shorter length is the whole rollback.
  }

  dispose(): void {
    tf.dispose([...this.keys, ...this.values]);
  }
}

interface TensorStep {
  readonly mask: Float32Array;
  readonly columns: number;
  readonly bias: tf.Tensor4D; // (B, 1, S, L + S)
  readonly staged: ({ k: tf.Tensor4D; v: tf.Tensor4D } | undefined)[];
}

/**
 * The portable cache (any backend): keys and values grow by concatenation, one column per slot for
 * every row; padding slots and rolled-back tokens stay as masked columns. A JS copy of the column
 * mask is the source of truth for lengths and rollback.
 */
export class TensorKvCache extends KvCache {
  private layers: ({ k: tf.Tensor4D; v: tf.Tensor4D } | undefined)[];
  /** Per row, 1 for each real column so far. */
  private readonly columnMask: number[][];

  constructor(options: KvCacheOptions) {
    super(options);
    this.layers = new Array(options.layers).fill(undefined);
    this.columnMask = Array.from({ length: options.batchSize }, () => []);
  }

  protected beginStep(mask: Float32Array, columns: number): TensorStep {
    const B = this.batchSize;
    const L = this.columnMask[0]?.length ?? 0;
    const bias = tf.tidy(() => {
      const fresh = tf.tensor2d(mask, [B, columns]); // (B, S)
      const past = L > 0 ? tf.tensor2d(this.columnMask.flat(), [B, L]) : undefined; // (B, L)
      return attentionBias(fresh, past); // (B, 1, S, L+S)
    });
    return { mask, columns, bias, staged: new Array(this.options.layers).fill(undefined) };
  }

  protected attendStep(step: unknown, layer: number, qkv: tf.Tensor2D): tf.Tensor2D {
    const s = step as TensorStep;
    const { headSize: dh } = this.options;
    const a = this.attention(layer);
    const [q2, k2, v2] = tf.split(qkv, [a.heads * dh, a.kvHeads * dh, a.kvHeads * dh], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const q = splitHeads(q2, this.batchSize, a.heads); // (B, H, S, dh)
    const k = splitHeads(k2, this.batchSize, a.kvHeads); // (B, Hkv, S, dh)
    const v = splitHeads(v2, this.batchSize, a.kvHeads); // (B, Hkv, S, dh)
    const past = this.layers[layer];
    const kAll = (past ? tf.concat([past.k, k], 2) : k) as tf.Tensor4D; // (B, Hkv, L+S, dh)
    const vAll = (past ? tf.concat([past.v, v], 2) : v) as tf.Tensor4D; // (B, Hkv, L+S, dh)
    const previous = s.staged[layer];
    if (previous) tf.dispose([previous.k, previous.v]);
    s.staged[layer] = { k: tf.keep(kAll), v: tf.keep(vAll) };
    const scores = softcapped(tf.mul(tf.matMul(q, shareHeads(kAll, a.heads), false, true), a.scale), a.softcap); // (B, H, S, L+S)
    const bias = a.window > 0 ? tf.add(s.bias, this.windowBias(s, a.window)) : s.bias; // (B, 1, S, L+S)
    return mergeHeads(tf.matMul(tf.softmax(tf.add(scores, bias)), shareHeads(vAll, a.heads)) as tf.Tensor4D); // (B*S, H dh)
  }

  /**
   * Bias (B, 1, S, L+S) hiding the keys at or past `window` positions before each of the step's
   * queries. Positions count each row's real columns (a row's padding and rolled-back columns repeat
   * the position before them; they are masked anyway).
   */
  private windowBias(s: TensorStep, window: number): tf.Tensor4D {
    const rows = this.columnMask.map((past, b) => {
      const columns = [...past, ...s.mask.subarray(b * s.columns, (b + 1) * s.columns)];
      let position = -1;
      return columns.map((real) => (position += real === 1 ? 1 : 0));
    });
    const L = rows[0]?.length ?? 0;
    const keys = rows.map((r) => tf.tensor1d(r, 'int32'));
    const queries = rows.map((r) => tf.tensor1d(r.slice(L - s.columns), 'int32'));
    const bias = tf.concat(
      keys.map((k, b) => windowBias(queries[b] as tf.Tensor1D, k, window)),
      0,
    ) as tf.Tensor4D; // (B, 1, S, L+S)
    tf.dispose([...keys, ...queries]);
    return bias;
  }

  protected commitStep(step: unknown): void {
    const s = step as TensorStep;
    if (s.staged.some((kv) => kv === undefined)) throw new SkdError('a decode step must attend in every layer');
    this.layers.forEach((kv) => kv && tf.dispose([kv.k, kv.v]));
    this.layers = [...s.staged];
    s.staged.fill(undefined); // adopted: endStep must not free them
    this.columnMask.forEach((row, b) => row.push(...s.mask.subarray(b * s.columns, (b + 1) * s.columns)));
  }

  protected endStep(step: unknown): void {
    const s = step as TensorStep;
    s.bias.dispose();
    s.staged.forEach((kv) => kv && tf.dispose([kv.k, kv.v]));
  }

  protected truncateRows(keep: readonly (number | undefined)[]): void {
    keep.forEach((n, b) => {
      if (n === undefined) return;
      const row = this.columnMask[b] as number[];
      let seen = 0;
      for (let c = 0; c < row.length; c++) {
        if (row[c] !== 1) continue;
        if (seen >= n) row[c] = 0;
        seen += 1;
      }
    });
  }

  dispose(): void {
    this.layers.forEach((kv) => kv && tf.dispose([kv.k, kv.v]));
    this.layers = [];
  }
}
