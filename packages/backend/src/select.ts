import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// @skd/ops registers tfjs-core's gradients and the plain-JS backend (see its platform module).
import '@skd/ops';
import { BackendError } from '@skd/core';
import { loadAddon, poolBytes, registerNativeBackend, registerNativeKernels, unregisterNativeKernels, type NativeKernelStatus } from '@skd/native';
import { describeAdapter, tryWebGpuBackend, type GpuAdapter } from './webgpu';

/**
 * `auto` tries the GPU build, then WebGPU where its adapter is a hardware GPU, then the native CPU
 * build, then wasm, then plain JS. `native` is skd's kernels over tfjs-backend-cpu's storage: the
 * same kernels as wasm without its 4 GB heap, for models whose weights, gradients and optimizer
 * state do not fit there (runs choose it when the backend is `auto` and the models are that large).
 * `webgpu` is tfjs-backend-webgpu on Dawn (npm `webgpu`): any Vulkan, Metal or D3D12 GPU, or Mesa's
 * software Vulkan on a CPU machine (correct and slow; `auto` passes it over).
 */
export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'native' | 'cpu';

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'native', 'cpu'];

export interface BackendAttempt {
  readonly backend: Exclude<BackendName, 'auto'>;
  readonly ok: boolean;
  readonly reason: string;
}

export interface BackendChoice {
  /** The tfjs backend now active (`tensorflow`, `webgpu`, `native`, `wasm` or `cpu`). */
  readonly name: string;
  readonly device: 'gpu' | 'cpu';
  /** On webgpu: the adapter Dawn found. */
  readonly adapter?: GpuAdapter;
  /** What was chosen and why, every backend tried included: for run summaries and `skd check`. */
  readonly summary: string;
  /** One short line for progress output: the backend, its native kernels, and which were unavailable. */
  readonly short: string;
  readonly attempts: readonly BackendAttempt[];
  /** On wasm and native: which native kernels are active (undefined on other backends or when disabled). */
  readonly native: NativeKernelStatus | undefined;
}

export interface SelectBackendOptions {
  readonly backend?: BackendName;
  /**
   * Bytes the run's models need (weights, gradients and optimizer state). With `auto`, past what
   * the wasm heap holds (WASM_BUDGET_BYTES) the native backend is tried in wasm's place.
   */
  readonly modelBytes?: number;
  /** On wasm, register skd's native kernels (OpenBLAS matmuls, UnsortedSegmentSum). Default true. */
  readonly nativeKernels?: boolean;
  /** Module resolution, replaceable in tests. */
  readonly resolver?: ModuleResolver;
}

export interface ModuleResolver {
  resolve(request: string, fromDir?: string): string | undefined;
  load(request: string): unknown;
}

export const nodeResolver: ModuleResolver = {
  resolve(request, fromDir) {
    try {
      return fromDir ? require.resolve(request, { paths: [fromDir] }) : require.resolve(request);
    } catch {
      return undefined;
    }
  },
  load(request) {
    return require(request);
  },
};

const NODE_PACKAGES = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
} as const;

/**
 * Every tfjs package must share one @tensorflow/tfjs-core: kernels and backends register into a
 * module-level registry, and a second copy silently keeps its own. Throws naming both copies.
 */
export function assertSingleTfjsCore(packages: readonly string[], resolver: ModuleResolver = nodeResolver): void {
  const ours = resolver.resolve('@tensorflow/tfjs-core');
  if (!ours) throw new BackendError('@tensorflow/tfjs-core is not installed', { hint: 'run npm ci' });
  for (const pkg of packages) {
    const manifest = resolver.resolve(`${pkg}/package.json`);
    if (!manifest) continue;
    const theirs = resolver.resolve('@tensorflow/tfjs-core', path.dirname(manifest));
    if (theirs && theirs !== ours) {
      throw new BackendError(
        `${pkg} uses a second copy of @tensorflow/tfjs-core (${theirs}, ours is ${ours}); ` + 'kernels registered in one copy are invisible to the other',
        { hint: `install the same @tensorflow/tfjs-core version as ${pkg} expects (4.22.0) and run npm dedupe` },
      );
    }
  }
}

async function tryNodeBackend(backend: 'tensorflow-gpu' | 'tensorflow', resolver: ModuleResolver): Promise<BackendAttempt> {
  const pkg = NODE_PACKAGES[backend];
  if (!resolver.resolve(`${pkg}/package.json`)) {
    return { backend, ok: false, reason: `${pkg} is not installed (optional; npm install ${pkg} where libtensorflow can be downloaded)` };
  }
  try {
    assertSingleTfjsCore([pkg], resolver);
    resolver.load(pkg);
  } catch (error) {
    return { backend, ok: false, reason: `${pkg} failed to load: ${(error as Error).message}` };
  }
  if (!tf.findBackendFactory('tensorflow')) {
    return { backend, ok: false, reason: `${pkg} loaded but registered no "tensorflow" backend in this tfjs-core` };
  }
  const ready = await tf.setBackend('tensorflow');
  return ready ? { backend, ok: true, reason: `${pkg} loaded` } : { backend, ok: false, reason: `${pkg} loaded but its backend failed to initialise` };
}

async function tryJsBackend(backend: 'wasm' | 'cpu', resolver: ModuleResolver): Promise<BackendAttempt> {
  const pkg = backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu';
  try {
    assertSingleTfjsCore([pkg], resolver);
    resolver.load(pkg);
    const ready = await tf.setBackend(backend);
    if (!ready) return { backend, ok: false, reason: `${pkg} failed to initialise` };
    return { backend, ok: true, reason: `${pkg} ready` };
  } catch (error) {
    return { backend, ok: false, reason: `${pkg}: ${(error as Error).message}` };
  }
}

async function tryNativeBackend(): Promise<BackendAttempt> {
  if (!registerNativeBackend()) return { backend: 'native', ok: false, reason: `the native addon is not available: ${loadAddon().reason}` };
  const ready = await tf.setBackend('native');
  return ready
    ? { backend: 'native', ok: true, reason: 'skd native kernels over tfjs-backend-cpu storage (no wasm heap limit)' }
    : { backend: 'native', ok: false, reason: 'the backend failed to initialise' };
}

/**
 * The model bytes past which `auto` picks the native backend over wasm: the wasm heap stops at
 * 4 GB, and activations (a 135M model's B=4, T=256 step needs about 2 GB of them) share it.
 */
export const WASM_BUDGET_BYTES = 1.5e9;

/**
 * Sets how many bytes of freed kernel outputs the current backend keeps for reuse, where it keeps any
 * (the native backend's pool; undefined: its default, SKD_POOL_BYTES or 1 GiB, so one run's setting does
 * not outlive it in the process); returns false on a backend without one.
 */
export function setOutputPoolBytes(bytes: number | undefined): boolean {
  const backend = tf.backend() as { setPoolLimit?: (bytes: number) => void };
  if (typeof backend.setPoolLimit !== 'function') return false;
  backend.setPoolLimit(bytes ?? poolBytes());
  return true;
}

/**
 * Activates a tfjs backend and reports the choice and the reason for it. An explicit choice that
 * fails throws with every reason; `auto` falls through to the next candidate.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendChoice> {
  const requested = options.backend ?? 'auto';
  const resolver = options.resolver ?? nodeResolver;
  if (!BACKEND_NAMES.includes(requested)) {
    throw new BackendError(`unknown backend "${String(requested)}"`, { hint: `use one of ${BACKEND_NAMES.join(', ')}` });
  }
  // selectBackend reports the choice and how to get a faster one; tfjs's own banner would only repeat it.
  tf.env().set('PROD', true);
  const large = (options.modelBytes ?? 0) > WASM_BUDGET_BYTES;
  const candidates: Exclude<BackendName, 'auto'>[] =
    requested === 'auto' ? ['tensorflow-gpu', 'webgpu', 'tensorflow', large ? 'native' : 'wasm', 'cpu'] : [requested];
  const attempts: BackendAttempt[] = [];
  let adapter: GpuAdapter | undefined;
  for (const candidate of candidates) {
    const attempt =
      candidate === 'wasm' || candidate === 'cpu'
        ? await tryJsBackend(candidate, resolver)
        : candidate === 'native'
          ? await tryNativeBackend()
          : candidate === 'webgpu'
            ? await tryWebGpuBackend(resolver, requested === 'auto')
            : await tryNodeBackend(candidate, resolver);
    attempts.push(attempt);
    if (candidate === 'webgpu') adapter = (attempt as { adapter?: GpuAdapter }).adapter;
    if (attempt.ok) {
      const device = candidate === 'tensorflow-gpu' || (candidate === 'webgpu' && !adapter?.software) ? 'gpu' : 'cpu';
      if (candidate === 'wasm' && options.nativeKernels === false) unregisterNativeKernels();
      const native =
        candidate === 'native'
          ? registerNativeKernels({ target: 'native' })
          : candidate === 'wasm' && options.nativeKernels !== false
            ? registerNativeKernels()
            : undefined;
      const skipped = attempts.filter((a) => !a.ok).map((a) => `${a.backend}: ${a.reason}`);
      const why =
        large && candidate === 'native' && requested === 'auto'
          ? ` (the models need ~${((options.modelBytes ?? 0) / 1e9).toFixed(1)} GB for weights and optimizer state, more than wasm's heap holds)`
          : '';
      // On webgpu the adapter says where the work runs: a GPU's name, or a software rasteriser.
      const where = candidate === 'webgpu' && adapter ? describeAdapter(adapter) : device;
      const summary =
        `backend ${tf.getBackend()} (${where}): ${attempt.reason}${why}` +
        (native ? `; ${native.summary}` : '') +
        (skipped.length ? `; skipped ${skipped.join('; ')}` : '');
      const unavailable = attempts.filter((a) => !a.ok).map((a) => a.backend);
      const short =
        `backend ${tf.getBackend()} (${where})` +
        (native ? `, ${native.summary}` : '') +
        (unavailable.length ? `; ${unavailable.join(', ')} unavailable (skd check says why)` : '');
      return { name: tf.getBackend(), device, ...(candidate === 'webgpu' && adapter ? { adapter } : {}), summary, short, attempts, native };
    }
  }
  throw new BackendError(`backend "${requested}" is not available: ${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`, {
    hint: 'use "backend": "auto" to fall back to wasm or cpu',
  });
}
