import * as tf from '@tensorflow/tfjs-core';
import { KERNELS } from '@skd/ops';
import { loadAddon, type NativeAddon } from './addon';
import { adamWKernel } from './kernels/adamw';
import { attentionGradKernel, attentionKernel, cachedAttentionKernel } from './kernels/attention';
import { forwardKlGradKernel, forwardKlKernel, mixtureKlGradKernel, mixtureKlKernel } from './kernels/divergence';
import { gatedActivationGradKernel, gatedActivationKernel } from './kernels/gated-activation';
import { gatherKernel } from './kernels/gather';
import { geluGradKernel, geluKernel } from './kernels/gelu';
import { identityKernel } from './kernels/identity';
import { layerNormGradKernel, layerNormKernel } from './kernels/layer-norm';
import { linearGradKernel, linearKernel } from './kernels/linear';
import { batchMatMulKernel, fusedMatMulKernel } from './kernels/matmul';
import { rmsNormGradKernel, rmsNormKernel } from './kernels/rms-norm';
import { rotaryKernel } from './kernels/rotary';
import { sampleTokensKernel } from './kernels/sample-tokens';
import { unsortedSegmentSumKernel } from './kernels/segment-sum';
import { crossEntropyGradKernel, crossEntropyKernel, logSoftmaxGradKernel, logSoftmaxKernel } from './kernels/softmax';
import { sumKernel } from './kernels/sum';
import { transformerDecodeKernel, transformerGenerateKernel } from './kernels/transformer-decode';
import { unaryKernel } from './kernels/unary';
import type { Fallback, KernelArgs } from './kernels/wasm';

export { broadcastBatchOffsets } from './kernels/matmul';
export { loadAddon, ADDON_PATH, type NativeAddon } from './addon';

export interface NativeKernelStatus {
  /** True when the native kernels are registered. */
  readonly native: boolean;
  /** Kernels now overridden or added on the wasm backend. */
  readonly kernels: readonly string[];
  /** Threads of the native pool (undefined without the addon). */
  readonly threads: number | undefined;
  /** The BLAS the addon uses (undefined without the addon). */
  readonly blas: string | undefined;
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
}

const originals = new Map<string, tf.KernelConfig | undefined>();

function replaceKernel(kernelName: string, kernelFunc: (args: KernelArgs) => unknown): void {
  const existing = tf.getKernel(kernelName, 'wasm');
  if (!originals.has(kernelName)) originals.set(kernelName, existing);
  if (existing) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
}

function stock(name: string): Fallback {
  const original = originals.has(name) ? originals.get(name) : tf.getKernel(name, 'wasm');
  return (args) => {
    if (!original) throw new Error(`no stock wasm ${name} kernel to fall back to`);
    return original.kernelFunc(args) as tf.TensorInfo | tf.TensorInfo[];
  };
}

/** The native kernels by name: stock tfjs kernels they replace, and the fused ops of @skd/ops. */
function nativeKernels(addon: NativeAddon): [string, (args: KernelArgs) => unknown][] {
  return [
    [tf.BatchMatMul, batchMatMulKernel(addon, stock(tf.BatchMatMul))],
    [tf._FusedMatMul, fusedMatMulKernel(addon, stock(tf._FusedMatMul))],
    [tf.Sum, sumKernel(addon, stock(tf.Sum))],
    [tf.Tanh, unaryKernel(addon, 0, stock(tf.Tanh))],
    [tf.Sigmoid, unaryKernel(addon, 1, stock(tf.Sigmoid))],
    [tf.GatherV2, gatherKernel(addon, stock(tf.GatherV2))],
    [KERNELS.linear, linearKernel(addon)],
    [KERNELS.linearGrad, linearGradKernel(addon)],
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
 * Registers skd's kernels on the wasm backend of this tfjs-core: with the addon, native matmuls,
 * reductions and the fused ops of @skd/ops (which then run one kernel each instead of their
 * composite form); UnsortedSegmentSum always (stock wasm has none). Call after the wasm backend is
 * registered; the stock kernels they replace are kept for `unregisterNativeKernels`.
 */
export function registerNativeKernels(options: RegisterOptions = {}): NativeKernelStatus {
  const loaded = loadAddon();
  const addon = options.stockBaseline ? undefined : loaded.addon;
  const reason = options.stockBaseline ? 'stock baseline requested' : loaded.reason;
  unregisterNativeKernels();
  const kernels: string[] = [];
  if (!options.stockBaseline) {
    replaceKernel(tf.Identity, identityKernel);
    kernels.push(tf.Identity);
  }
  if (addon) {
    for (const [name, kernel] of nativeKernels(addon)) {
      replaceKernel(name, kernel);
      kernels.push(name);
    }
  }
  replaceKernel(tf.UnsortedSegmentSum, unsortedSegmentSumKernel(addon));
  kernels.push(tf.UnsortedSegmentSum);
  const threads = addon ? addon.setThreads(options.threads ?? 0) : undefined;
  const blas = addon ? addon.blas() : undefined;
  const summary = addon ? `native kernels (${blas}, ${threads} threads)` : `stock wasm kernels: ${reason}`;
  return { native: addon !== undefined, kernels, threads, blas, summary };
}

/** Restores the stock wasm kernels (benchmarks and tests compare both in one process). */
export function unregisterNativeKernels(): void {
  for (const [name, original] of originals) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    if (original) tf.registerKernel(original);
  }
  originals.clear();
}
