import * as tf from '@tensorflow/tfjs-core';
import { loadAddon } from './addon';
import { batchMatMulKernel, fusedMatMulKernel, gatherKernel, identityKernel, sumKernel, unaryKernel, unsortedSegmentSumKernel } from './kernels';

export { broadcastBatchOffsets } from './kernels';
export { loadAddon, ADDON_PATH, type NativeAddon } from './addon';

export interface NativeKernelStatus {
  /** True when the OpenBLAS kernels are registered. */
  readonly native: boolean;
  /** Kernels now overridden or added on the wasm backend. */
  readonly kernels: readonly string[];
  /** OpenBLAS threads (undefined without the addon). */
  readonly blasThreads: number | undefined;
  /** One line: what is active and, if not native, what to install. */
  readonly summary: string;
}

const originals = new Map<string, tf.KernelConfig | undefined>();

function replaceKernel(config: tf.KernelConfig): void {
  const existing = tf.getKernel(config.kernelName, 'wasm');
  if (!originals.has(config.kernelName)) originals.set(config.kernelName, existing);
  if (existing) tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel(config);
}

/**
 * Registers skd's kernels on the wasm backend of this tfjs-core: OpenBLAS BatchMatMul and
 * _FusedMatMul when the addon is built, and UnsortedSegmentSum always (wasm has none). Call after
 * the wasm backend is registered; unregister-then-register replaces the stock kernels.
 */
export interface RegisterOptions {
  /** OpenBLAS threads (default: OpenBLAS's own choice, the core count). */
  readonly threads?: number;
  /**
   * Register only what stock wasm lacks to train at all (UnsortedSegmentSum, in JS): the baseline
   * the benchmark compares against. Default false: every kernel skd has.
   */
  readonly stockBaseline?: boolean;
}

export function registerNativeKernels(options: RegisterOptions = {}): NativeKernelStatus {
  const loaded = loadAddon();
  const addon = options.stockBaseline ? undefined : loaded.addon;
  const reason = options.stockBaseline ? 'stock baseline requested' : loaded.reason;
  const kernels: string[] = [];
  unregisterNativeKernels();
  if (!options.stockBaseline) {
    replaceKernel({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: identityKernel as tf.KernelFunc });
    kernels.push(tf.Identity);
  }
  if (addon) {
    const stock = (name: string) => {
      const original = originals.has(name) ? originals.get(name) : tf.getKernel(name, 'wasm');
      return (args: Parameters<tf.KernelFunc>[0]) => {
        if (!original) throw new Error(`no stock wasm ${name} kernel to fall back to`);
        return original.kernelFunc(args);
      };
    };
    replaceKernel({ kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc: batchMatMulKernel(addon, stock(tf.BatchMatMul)) as tf.KernelFunc });
    replaceKernel({ kernelName: tf._FusedMatMul, backendName: 'wasm', kernelFunc: fusedMatMulKernel(addon, stock(tf._FusedMatMul)) as tf.KernelFunc });
    replaceKernel({ kernelName: tf.Sum, backendName: 'wasm', kernelFunc: sumKernel(addon, stock(tf.Sum)) as tf.KernelFunc });
    replaceKernel({ kernelName: tf.Tanh, backendName: 'wasm', kernelFunc: unaryKernel(addon, 0, stock(tf.Tanh)) as tf.KernelFunc });
    replaceKernel({ kernelName: tf.Sigmoid, backendName: 'wasm', kernelFunc: unaryKernel(addon, 1, stock(tf.Sigmoid)) as tf.KernelFunc });
    replaceKernel({ kernelName: tf.GatherV2, backendName: 'wasm', kernelFunc: gatherKernel(addon, stock(tf.GatherV2)) as tf.KernelFunc });
    kernels.push(tf.BatchMatMul, tf._FusedMatMul, tf.Sum, tf.Tanh, tf.Sigmoid, tf.GatherV2);
  }
  replaceKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumKernel(addon) as tf.KernelFunc });
  kernels.push(tf.UnsortedSegmentSum);
  const blasThreads = addon ? addon.setThreads(options.threads ?? 0) : undefined;
  const summary = addon
    ? `native kernels: ${kernels.join(', ')} (OpenBLAS, ${blasThreads} threads)`
    : `wasm kernels ${kernels.join(', ')} without OpenBLAS: ${reason}`;
  return { native: addon !== undefined, kernels, blasThreads, summary };
}

/** Restores the stock wasm kernels (benchmarks compare both in one process). */
export function unregisterNativeKernels(): void {
  for (const [name, original] of originals) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    if (original) tf.registerKernel(original);
  }
  originals.clear();
}
