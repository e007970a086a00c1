import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon';

/** The parts of tfjs-backend-wasm's BackendWasm the kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
type Fallback = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Output batch dims of a batched matmul with true broadcasting, and for each output batch the
 * element offsets of its a and b matrices. (tfjs 4.22's stock kernel flattens the batch dims of
 * each input and mis-pairs matrices when both broadcast, e.g. [2,1,M,K] x [1,3,K,N].)
 */
export function broadcastBatchOffsets(aBatch: readonly number[], bBatch: readonly number[], aMatrix: number, bMatrix: number): {
  outBatch: number[];
  aOffsets: Int32Array;
  bOffsets: Int32Array;
} {
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (dims: readonly number[]) => [...new Array(rank - dims.length).fill(1), ...dims];
  const aDims = pad(aBatch);
  const bDims = pad(bBatch);
  const outBatch = aDims.map((d, i) => {
    const e = bDims[i] as number;
    if (d !== e && d !== 1 && e !== 1) throw new Error(`matMul batch dims [${aBatch.join(',')}] and [${bBatch.join(',')}] do not broadcast`);
    return Math.max(d, e);
  });
  const count = outBatch.reduce((x, y) => x * y, 1);
  const aOffsets = new Int32Array(count);
  const bOffsets = new Int32Array(count);
  const index = new Array(rank).fill(0);
  for (let i = 0; i < count; i++) {
    let aFlat = 0;
    let bFlat = 0;
    for (let r = 0; r < rank; r++) {
      aFlat = aFlat * (aDims[r] as number) + ((aDims[r] as number) === 1 ? 0 : (index[r] as number));
      bFlat = bFlat * (bDims[r] as number) + ((bDims[r] as number) === 1 ? 0 : (index[r] as number));
    }
    aOffsets[i] = aFlat * aMatrix;
    bOffsets[i] = bFlat * bMatrix;
    for (let r = rank - 1; r >= 0; r--) {
      index[r] = (index[r] as number) + 1;
      if ((index[r] as number) < (outBatch[r] as number)) break;
      index[r] = 0;
    }
  }
  return { outBatch, aOffsets, bOffsets };
}

/** Shapes of op(a) @ op(b): M, N, K and the output batch. */
function matmulGeometry(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean) {
  const ar = a.shape.length;
  const br = b.shape.length;
  const M = (transposeA ? a.shape[ar - 1] : a.shape[ar - 2]) as number;
  const K = (transposeA ? a.shape[ar - 2] : a.shape[ar - 1]) as number;
  const Kb = (transposeB ? b.shape[br - 1] : b.shape[br - 2]) as number;
  const N = (transposeB ? b.shape[br - 2] : b.shape[br - 1]) as number;
  if (K !== Kb) {
    throw new Error(`matMul inner dimensions differ: a [${a.shape.join(',')}]${transposeA ? 'ᵀ' : ''} and b [${b.shape.join(',')}]${transposeB ? 'ᵀ' : ''}`);
  }
  const { outBatch, aOffsets, bOffsets } = broadcastBatchOffsets(a.shape.slice(0, -2), b.shape.slice(0, -2), M * K, K * N);
  return { M, N, K, outBatch, aOffsets, bOffsets };
}

/** op(a) @ op(b) into a new wasm tensor; views are taken after allocating (allocation may grow and detach the heap). */
function nativeMatmul(addon: NativeAddon, backend: WasmBackendLike, a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean) {
  const g = matmulGeometry(a, b, transposeA, transposeB);
  const out = backend.makeOutput([...g.outBatch, g.M, g.N], 'float32');
  if (g.M * g.N * g.aOffsets.length > 0) {
    addon.sgemmBatch(
      backend.typedArrayFromHeap(a) as Float32Array,
      backend.typedArrayFromHeap(b) as Float32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      g.aOffsets,
      g.bOffsets,
      g.M,
      g.N,
      g.K,
      transposeA,
      transposeB,
    );
  }
  return { out, rows: g.aOffsets.length * g.M, cols: g.N };
}

export function batchMatMulKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return nativeMatmul(addon, args.backend as WasmBackendLike, a, b, transposeA, transposeB).out;
  };
}

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, leakyrelu: 4 };

/** _FusedMatMul: matmul, then bias (per column, scalar or full) and activation in one native pass. */
export function fusedMatMulKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string; leakyreluAlpha?: number };
    const activation = ACTIVATIONS[attrs.activation ?? 'linear'];
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32' || activation === undefined || preluActivationWeights) return fallback(args);
    if (bias && bias.dtype !== 'float32') return fallback(args);
    const backend = args.backend as WasmBackendLike;
    const g = matmulGeometry(a, b, attrs.transposeA, attrs.transposeB);
    const outSize = g.aOffsets.length * g.M * g.N;
    const biasSize = bias ? bias.shape.reduce((x, y) => x * y, 1) : 0;
    const biasMode = !bias ? 0 : biasSize === 1 ? 2 : biasSize === g.N && bias.shape[bias.shape.length - 1] === g.N ? 1 : biasSize === outSize ? 3 : -1;
    if (biasMode < 0) return fallback(args);
    const { out, rows, cols } = nativeMatmul(addon, backend, a, b, attrs.transposeA, attrs.transposeB);
    if (biasMode !== 0 || activation !== 0) {
      addon.biasActivation(
        backend.typedArrayFromHeap(out) as Float32Array,
        bias ? (backend.typedArrayFromHeap(bias) as Float32Array) : null,
        rows,
        cols,
        biasMode,
        activation,
        attrs.leakyreluAlpha ?? 0.2,
      );
    }
    return out;
  };
}

/**
 * UnsortedSegmentSum (the gradient of gather, so of every embedding), which tfjs-backend-wasm
 * lacks. Native when the addon is loaded, else a JS loop over the heap views.
 */
export function unsortedSegmentSumKernel(addon: NativeAddon | undefined) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const { numSegments } = args.attrs as { numSegments: number };
    const backend = args.backend as WasmBackendLike;
    const rows = segmentIds.shape.reduce((p, q) => p * q, 1);
    const inner = rows === 0 ? 0 : x.shape.slice(segmentIds.shape.length).reduce((p, q) => p * q, 1);
    const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
    const xs = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
    const target = backend.typedArrayFromHeap(out);
    if (addon && x.dtype === 'float32') {
      addon.unsortedSegmentSum(xs as Float32Array, ids, target as Float32Array, rows, inner, numSegments);
      return out;
    }
    target.fill(0);
    for (let r = 0; r < rows; r++) {
      const s = ids[r] as number;
      if (s < 0 || s >= numSegments) continue;
      for (let j = 0; j < inner; j++) target[s * inner + j] = (target[s * inner + j] as number) + (xs[r * inner + j] as number);
    }
    return out;
  };
}

const size = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/**
 * Sum over a contiguous run of axes as (outer, reduce, inner) → (outer, inner) natively. tfjs-wasm
 * transposes the reduced axes to the end first, which made bias and LayerNorm gradients (sums over
 * the leading axes) a fifth of a training step. Other layouts and dtypes use the stock kernel.
 */
export function sumKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[] | null; keepDims: boolean };
    const rank = x.shape.length;
    const axes = [...new Set((axis === null || axis === undefined ? x.shape.map((_, i) => i) : Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
    const first = axes[0];
    const last = axes[axes.length - 1];
    if (x.dtype !== 'float32' || first === undefined || last === undefined || last - first + 1 !== axes.length) return fallback(args);
    const backend = args.backend as WasmBackendLike;
    const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    addon.sumMiddle(
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      size(x.shape.slice(0, first)),
      size(x.shape.slice(first, last + 1)),
      size(x.shape.slice(last + 1)),
    );
    return out;
  };
}

/** Tanh (op 0) or Sigmoid (op 1), vectorised natively; the stock kernels run a scalar loop. */
export function unaryKernel(addon: NativeAddon, op: 0 | 1, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return fallback(args);
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([...x.shape], 'float32');
    addon.unary(op, backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array, size(x.shape));
    return out;
  };
}

/** GatherV2 along axis 0 (embedding lookups) as row copies; other axes use the stock kernel. */
export function gatherKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const normalized = axis < 0 ? axis + x.shape.length : axis;
    if (x.dtype !== 'float32' || indices.dtype !== 'int32' || normalized !== 0 || (batchDims ?? 0) !== 0 || x.shape.length < 1) return fallback(args);
    const backend = args.backend as WasmBackendLike;
    const rows = x.shape[0] as number;
    const inner = size(x.shape.slice(1));
    const count = size(indices.shape);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    const bad = addon.gatherRows(backend.typedArrayFromHeap(x) as Float32Array, ids, backend.typedArrayFromHeap(out) as Float32Array, count, inner, rows);
    if (bad >= 0) throw new Error(`gather index ${ids[bad]} (position ${bad}) is outside [0, ${rows})`);
    return out;
  };
}

/**
 * Identity by reference: the engine clones every tensor it saves for backprop, and stock wasm copies
 * the bytes each time (7% of a training step). wasm kernels never write into an existing buffer, so
 * sharing the data with a reference count is safe, as the cpu backend does.
 */
export function identityKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  (args.backend as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}
