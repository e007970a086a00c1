import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { type Fallback, type KernelArgs, memoryOf, type WasmBackendLike } from './wasm';

/**
 * Output batch dims of a batched matmul with true broadcasting, and for each output batch the
 * element offsets of its a and b matrices. (tfjs 4.22's stock kernel flattens the batch dims of
 * each input and mis-pairs matrices when both broadcast, e.g. [2,1,M,K] x [1,3,K,N].)
 */
export function broadcastBatchOffsets(
  aBatch: readonly number[],
  bBatch: readonly number[],
  aMatrix: number,
  bMatrix: number,
): {
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
    return nativeMatmul(addon, memoryOf(args.backend), a, b, transposeA, transposeB).out;
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
    const backend = memoryOf(args.backend);
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
