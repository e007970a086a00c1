import * as tf from '@tensorflow/tfjs-core';
import { KERNELS } from '@skd/ops';
import { loadAddon, type IsaLevel, type NativeAddon } from './addon';
import { NativeBackend } from './native-backend';
import { adamWKernel } from './kernels/adamw';
import { attentionGradKernel, attentionKernel, cachedAttentionKernel } from './kernels/attention';
import { forwardKlGradKernel, forwardKlKernel, mixtureKlGradKernel, mixtureKlKernel } from './kernels/divergence';
import { gatedActivationGradKernel, gatedActivationKernel } from './kernels/gated-activation';
import { gatherKernel, spreadRowsKernel } from './kernels/gather';
import { geluGradKernel, geluKernel } from './kernels/gelu';
import { gatherHalfKernel, linearHalfKernel } from './kernels/half';
import { identityKernel } from './kernels/identity';
import { layerNormGradKernel, layerNormKernel } from './kernels/layer-norm';
import { linearGradKernel, linearKernel } from './kernels/linear';
import { batchMatMulKernel, fusedMatMulKernel } from './kernels/matmul';
import { rmsNormGradKernel, rmsNormKernel } from './kernels/rms-norm';
import { rotaryKernel } from './kernels/rotary';
import { sampleTokensKernel } from './kernels/sample-tokens';
import { addKernel, fillKernel, sliceKernel, splitVKernel, transposeKernel } from './kernels/storage';
import { unsortedSegmentSumKernel } from './kernels/segment-sum';
import { crossEntropyGradKernel, crossEntropyKernel, logSoftmaxGradKernel, logSoftmaxKernel } from './kernels/softmax';
import { sumKernel } from './kernels/sum';
import { transformerDecodeKernel, transformerGenerateKernel } from './kernels/transformer-decode';
import { unaryKernel } from './kernels/unary';
import type { Fallback, KernelArgs } from './kernels/wasm';

export { broadcastBatchOffsets } from './kernels/matmul';
export {
  chooseThreadWaiting,
  loadAddon,
  ADDON_PATH,
  addonPathFor,
  chooseIsa,
  cpuFeatures,
  detectIsa,
  ISA_LEVELS,
  type IsaLevel,
  type NativeAddon,
} from './addon';
export { NativeBackend, poolBytes, pooledSize } from './native-backend';

export interface NativeKernelStatus {
  /** True when the native kernels are registered. */
  readonly native: boolean;
  /** Kernels now overridden or added on the wasm backend. */
  readonly kernels: readonly string[];
  /** Threads of the native pool (undefined without the addon). */
  readonly threads: number | undefined;
  /** The BLAS the addon uses (undefined without the addon). */
  readonly blas: string | undefined;
  /** The x86-64 level of the loaded build (avx512, avx2, baseline; undefined: built for the machine, or no addon). */
  readonly isa?: IsaLevel;
  /** One short line: what is active and, if not native, what to install. */
  readonly summary: string;
}

export interface RegisterOptions {
  /** Threads of the native pool (default: SKD_THREADS, else every core). */
  readonly threads?: number;
  /**
   * Register only what stock wasm lacks to train at all (UnsortedSegmentSum, in JS): the baseline
   * the benchmark compares against. Default false: every kernel skd has.
   */
  readonly stockBaseline?: boolean;
  /** The backend to register on (default wasm). */
  readonly target?: NativeTarget;
}

/** Backends the kernels register on: tfjs-backend-wasm, and skd's `native` (tfjs-backend-cpu's storage, no heap limit). */
export type NativeTarget = 'wasm' | 'native';

/** The stock kernel each registration replaced, per backend, for unregisterNativeKernels. */
const originals = new Map<NativeTarget, Map<string, tf.KernelConfig | undefined>>([
  ['wasm', new Map()],
  ['native', new Map()],
]);

function replaceKernel(target: NativeTarget, kernelName: string, kernelFunc: (args: KernelArgs) => unknown): void {
  const replaced = originals.get(target) as Map<string, tf.KernelConfig | undefined>;
  const existing = tf.getKernel(kernelName, target);
  if (!replaced.has(kernelName)) replaced.set(kernelName, existing);
  if (existing) tf.unregisterKernel(kernelName, target);
  tf.registerKernel({ kernelName, backendName: target, kernelFunc: kernelFunc as tf.KernelFunc });
}

function stock(target: NativeTarget, name: string): Fallback {
  const replaced = originals.get(target) as Map<string, tf.KernelConfig | undefined>;
  const original = replaced.has(name) ? replaced.get(name) : tf.getKernel(name, target);
  return (args) => {
    if (!original) throw new Error(`no stock ${target} ${name} kernel to fall back to`);
    return original.kernelFunc(args) as tf.TensorInfo | tf.TensorInfo[];
  };
}

/** The native kernels by name: stock tfjs kernels they replace, and the fused ops of @skd/ops. */
function nativeKernels(addon: NativeAddon, target: NativeTarget): [string, (args: KernelArgs) => unknown][] {
  return [
    [tf.BatchMatMul, batchMatMulKernel(addon, stock(target, tf.BatchMatMul))],
    [tf._FusedMatMul, fusedMatMulKernel(addon, stock(target, tf._FusedMatMul))],
    [tf.Sum, sumKernel(addon, stock(target, tf.Sum))],
    [tf.Tanh, unaryKernel(addon, 0, stock(target, tf.Tanh))],
    [tf.Sigmoid, unaryKernel(addon, 1, stock(target, tf.Sigmoid))],
    [tf.Square, unaryKernel(addon, 2, stock(target, tf.Square))],
    [tf.GatherV2, gatherKernel(addon, stock(target, tf.GatherV2))],
    [KERNELS.linear, linearKernel(addon)],
    [KERNELS.linearGrad, linearGradKernel(addon)],
    [KERNELS.linearHalf, linearHalfKernel(addon)],
    [KERNELS.gatherHalf, gatherHalfKernel(addon)],
    [KERNELS.spreadRows, spreadRowsKernel],
    [KERNELS.layerNorm, layerNormKernel(addon)],
    [KERNELS.layerNormGrad, layerNormGradKernel(addon)],
    [KERNELS.rmsNorm, rmsNormKernel(addon)],
    [KERNELS.rmsNormGrad, rmsNormGradKernel(addon)],
    [KERNELS.rotary, rotaryKernel(addon)],
    [KERNELS.gatedActivation, gatedActivationKernel(addon)],
    [KERNELS.gatedActivationGrad, gatedActivationGradKernel(addon)],
    [KERNELS.gelu, geluKernel(addon)],
    [KERNELS.geluGrad, geluGradKernel(addon)],
    [KERNELS.attention, attentionKernel(addon)],
    [KERNELS.attentionGrad, attentionGradKernel(addon)],
    [KERNELS.cachedAttention, cachedAttentionKernel(addon)],
    [KERNELS.transformerDecode, transformerDecodeKernel(addon)],
    [KERNELS.transformerGenerate, transformerGenerateKernel(addon)],
    [KERNELS.logSoftmax, logSoftmaxKernel(addon)],
    [KERNELS.logSoftmaxGrad, logSoftmaxGradKernel(addon)],
    [KERNELS.crossEntropy, crossEntropyKernel(addon)],
    [KERNELS.crossEntropyGrad, crossEntropyGradKernel(addon)],
    [KERNELS.forwardKl, forwardKlKernel(addon)],
    [KERNELS.forwardKlGrad, forwardKlGradKernel(addon)],
    [KERNELS.mixtureKl, mixtureKlKernel(addon)],
    [KERNELS.mixtureKlGrad, mixtureKlGradKernel(addon)],
    [KERNELS.adamW, adamWKernel(addon)],
    [KERNELS.sampleTokens, sampleTokensKernel(addon)],
  ];
}

/**
 * Registers skd's kernels on the wasm backend of this tfjs-core (or on skd's `native` backend, see
 * registerNativeBackend): with the addon, native matmuls, reductions and the fused ops of @skd/ops
 * (which then run one kernel each instead of their composite form); UnsortedSegmentSum always (stock
 * wasm has none). Call after the backend is registered; the stock kernels they replace are kept for
 * `unregisterNativeKernels`.
 */
export function registerNativeKernels(options: RegisterOptions = {}): NativeKernelStatus {
  const target = options.target ?? 'wasm';
  const loaded = loadAddon();
  const addon = options.stockBaseline ? undefined : loaded.addon;
  const reason = options.stockBaseline ? 'stock baseline requested' : loaded.reason;
  unregisterNativeKernels(target);
  const kernels: string[] = [];
  // The cpu storage's own Identity already shares data by reference.
  if (!options.stockBaseline && target === 'wasm') {
    replaceKernel(target, tf.Identity, identityKernel);
    kernels.push(tf.Identity);
  }
  if (addon) {
    const slice = sliceKernel(stock(target, tf.Slice));
    const storage: [string, (args: KernelArgs) => unknown][] =
      target === 'native'
        ? [
            [tf.Add, addKernel(addon, stock(target, tf.Add))],
            [tf.Transpose, transposeKernel(addon, stock(target, tf.Transpose))],
            [tf.Slice, slice],
            [tf.SplitV, splitVKernel(slice)],
            [tf.Fill, fillKernel(stock(target, tf.Fill))],
          ]
        : [];
    for (const [name, kernel] of [...nativeKernels(addon, target), ...storage]) {
      replaceKernel(target, name, kernel);
      kernels.push(name);
    }
  }
  replaceKernel(target, tf.UnsortedSegmentSum, unsortedSegmentSumKernel(addon));
  kernels.push(tf.UnsortedSegmentSum);
  const threads = addon ? addon.setThreads(options.threads ?? 0) : undefined;
  const blas = addon ? addon.blas() : undefined;
  const isa = addon ? loaded.isa : undefined;
  const summary = addon
    ? `native kernels (${blas}, ${isa ? `${isa === 'avx512' ? 'AVX-512' : isa === 'avx2' ? 'AVX2' : 'SSE4.2'}, ` : ''}${threads} threads)`
    : `stock ${target === 'wasm' ? 'wasm' : 'cpu'} kernels: ${reason}`;
  return { native: addon !== undefined, kernels, threads, blas, ...(isa ? { isa } : {}), summary };
}

/** Restores the stock kernels of a backend (benchmarks and tests compare both in one process). */
export function unregisterNativeKernels(target: NativeTarget = 'wasm'): void {
  const replaced = originals.get(target) as Map<string, tf.KernelConfig | undefined>;
  for (const [name, original] of replaced) {
    if (tf.getKernel(name, target)) tf.unregisterKernel(name, target);
    if (original) tf.registerKernel(original);
  }
  replaced.clear();
}

/**
 * Registers the `native` backend: tfjs-backend-cpu's tensor storage (each tensor its own typed
 * array, so models past the wasm heap's 4 GB fit) with every cpu kernel, then skd's native kernels
 * over it. Returns false when the addon is missing (the backend would be plain JS). Idempotent.
 */
export function registerNativeBackend(): boolean {
  if (!loadAddon().addon) return false;
  if (tf.findBackendFactory('native')) return true;
  tf.registerBackend('native', () => new NativeBackend(), 0);
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (!tf.getKernel(config.kernelName, 'native')) tf.registerKernel({ ...config, backendName: 'native' });
  }
  return true;
}
