import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '@skd/core';
import type { BackendAttempt, ModuleResolver } from './select';
import { registerWebGpuKernels } from './webgpu-kernels';

/** Dawn's Node binding (npm `webgpu`) and TensorFlow.js's WebGPU backend: both optional. */
export const WEBGPU_PACKAGES = { dawn: 'webgpu', backend: '@tensorflow/tfjs-backend-webgpu' } as const;

/** What Dawn says about the adapter it found (GPUAdapterInfo's fields). */
export interface GpuAdapter {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** A CPU rasteriser (Mesa's llvmpipe/lavapipe, SwiftShader): correct, far slower than skd's CPU kernels. */
  readonly software: boolean;
  readonly features: readonly string[];
}

/** Float tensors up to this size keep their host copy once uploaded (see SkdWebGpuBackend). */
export const HOST_COPY_FLOAT_BYTES = 1 << 20;

interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  readonly features: Iterable<string>;
  readonly limits: Record<string, number>;
  requestDevice(descriptor: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<unknown>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}
interface TensorEntry {
  values: unknown;
  resource: unknown;
  dtype: tf.DataType;
}
type WebGpuBackendClass = new (
  device: unknown,
  adapterInfo?: unknown,
) => tf.KernelBackend & {
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  tensorMap: { get(dataId: tf.DataId): TensorEntry | undefined };
  uploadToGPU(dataId: tf.DataId): void;
};

let gpu: GpuLike | undefined;

/**
 * Dawn's `navigator.gpu`, made once per process: its WebGPU globals (GPUBufferUsage, ...) go on
 * globalThis, where tfjs-backend-webgpu looks for them. Loads `dawn.node` for this platform from the
 * `webgpu` package directly (the package's own entry is an ES module).
 */
function dawnGpu(resolver: ModuleResolver): GpuLike {
  if (gpu) return gpu;
  const manifest = resolver.resolve(`${WEBGPU_PACKAGES.dawn}/package.json`) as string;
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const binding = path.join(path.dirname(manifest), 'dist', `${process.platform}-${arch}`, 'dawn.node');
  const dawn = resolver.load(binding) as DawnModule;
  Object.assign(globalThis, dawn.globals);
  gpu = dawn.create([]);
  const host = globalThis as { navigator?: { gpu?: unknown } };
  if (!host.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(host.navigator as object, 'gpu', { value: gpu, configurable: true, writable: true });
  return gpu;
}

/** The adapter's description: "llvmpipe (LLVM 15.0.6), mesa, software" or a GPU's name. */
export function describeAdapter(adapter: GpuAdapter): string {
  const name = adapter.description || adapter.device || 'unnamed adapter';
  return `${name}, ${adapter.vendor || 'unknown vendor'}, ${adapter.software ? 'software' : adapter.architecture || 'hardware'}`;
}

function adapterOf(adapter: AdapterLike): GpuAdapter {
  const info = adapter.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ').toLowerCase();
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: /software|llvmpipe|lavapipe|swiftshader|cpu/.test(text),
    features: [...adapter.features].sort(),
  };
}

let registered: GpuAdapter | undefined;

/**
 * Finds Dawn's adapter and registers skd's WebGPU backend under tfjs's name `webgpu`. Reports why
 * not (packages missing, no adapter: a machine without Vulkan drivers) without throwing.
 */
export async function probeWebGpu(resolver: ModuleResolver): Promise<{ adapter: GpuAdapter } | { reason: string }> {
  for (const pkg of Object.values(WEBGPU_PACKAGES)) {
    if (!resolver.resolve(`${pkg}/package.json`)) {
      return { reason: `${pkg} is not installed (optional: npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0; skd's repository has both)` };
    }
  }
  if (registered && tf.findBackendFactory('webgpu')) return { adapter: registered };
  let found: AdapterLike | null;
  try {
    found = await dawnGpu(resolver).requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    return { reason: `Dawn (${WEBGPU_PACKAGES.dawn}) failed to load: ${(error as Error).message}` };
  }
  if (!found) {
    return {
      reason:
        "Dawn found no WebGPU adapter: it needs a Vulkan driver (a GPU's, or Mesa 25's software one: apt-get install -t bookworm-backports mesa-vulkan-drivers, as tools/setup.sh does)",
    };
  }
  const adapter = adapterOf(found);
  const module = resolver.load(WEBGPU_PACKAGES.backend) as { WebGPUBackend: WebGpuBackendClass; webgpu_util: Parameters<typeof registerWebGpuKernels>[0] };
  const requested = found;
  tf.removeBackend('webgpu'); // tfjs-backend-webgpu's own factory: ours keeps small host copies (below)
  tf.registerBackend(
    'webgpu',
    async () => {
      const limits = requested.limits;
      const features = new Set(requested.features);
      const device = await requested.requestDevice({
        requiredFeatures: ['timestamp-query'].filter((f) => features.has(f)),
        requiredLimits: Object.fromEntries(
          [
            'maxComputeWorkgroupStorageSize',
            'maxComputeWorkgroupsPerDimension',
            'maxStorageBufferBindingSize',
            'maxBufferSize',
            'maxComputeWorkgroupSizeX',
            'maxComputeInvocationsPerWorkgroup',
          ].map((k) => [k, limits[k] as number]),
        ),
      });
      return new (hostCopying(module.WebGPUBackend))(device, requested.info);
    },
    1,
  );
  registerWebGpuKernels(module.webgpu_util);
  registered = adapter;
  return { adapter };
}

/**
 * tfjs-backend-webgpu drops a tensor's host values once they are uploaded, and in Node it cannot
 * read GPU memory synchronously (its `dataSync` draws through an OffscreenCanvas). skd reads a few
 * small host-made tensors synchronously (attention masks, token ids, target masks), so this
 * subclass keeps the host copy of integer and boolean tensors, and of float tensors up to
 * HOST_COPY_FLOAT_BYTES: tensors are immutable, so the copy stays right. Values computed on the
 * GPU are read with `await tensor.data()`.
 */
function hostCopying(Base: WebGpuBackendClass): WebGpuBackendClass {
  return class SkdWebGpuBackend extends Base {
    /** The first WebGPU error nothing caught (an invalid pipeline computes nothing and says so only on the console). */
    private uncaptured: string | undefined;

    constructor(device: unknown, adapterInfo?: unknown) {
      super(device, adapterInfo);
      const target = device as { addEventListener?(type: string, listener: (event: { error?: { message?: string } }) => void): void };
      target.addEventListener?.('uncapturederror', (event) => {
        this.uncaptured ??= event.error?.message ?? 'unknown WebGPU error';
      });
    }

    /** Reads fail once a kernel failed: its output would be whatever its buffer held. */
    override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
      const values = await super.read(dataId);
      if (this.uncaptured)
        throw new BackendError(`a WebGPU kernel failed, so results are not valid: ${this.uncaptured}`, {
          hint: 'rerun with "backend": "native" and report the kernel',
        });
      return values;
    }

    override uploadToGPU(dataId: tf.DataId): void {
      const entry = this.tensorMap.get(dataId);
      const values = entry?.values as ArrayBufferView | undefined;
      super.uploadToGPU(dataId);
      if (!entry || !values || !ArrayBuffer.isView(values)) return;
      if (entry.dtype !== 'float32' || values.byteLength <= HOST_COPY_FLOAT_BYTES) entry.values = values;
    }
  };
}

/**
 * GPU device nodes a hardware adapter would come through (Linux's DRM render nodes, NVIDIA's, WSL's
 * `/dev/dxg`). Without any, only a software adapter can exist, and `auto` need not ask Dawn (which
 * takes 0.1 s and prints Mesa's warnings).
 */
export function gpuDeviceNodes(dev = '/dev'): string[] {
  if (process.platform !== 'linux') return ['(not Linux: ask Dawn)'];
  const nodes: string[] = [];
  for (const dir of [dev, path.join(dev, 'dri')]) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    nodes.push(...names.filter((n) => /^(renderD\d+|nvidia\d+|dxg)$/.test(n)).map((n) => path.join(dir, n)));
  }
  return nodes;
}

/**
 * Activates the WebGPU backend: the attempt's reason names the adapter. With `requireHardware`
 * (`auto`), a software adapter is passed over, and without a GPU device node Dawn is not asked.
 */
export async function tryWebGpuBackend(resolver: ModuleResolver, requireHardware = false): Promise<BackendAttempt & { adapter?: GpuAdapter }> {
  if (requireHardware && gpuDeviceNodes().length === 0) {
    return {
      backend: 'webgpu',
      ok: false,
      reason: 'no GPU device node (/dev/dri/renderD*, /dev/nvidia*): only a software adapter could be found; ask for it with "backend": "webgpu"',
    };
  }
  const probe = await probeWebGpu(resolver);
  if ('reason' in probe) return { backend: 'webgpu', ok: false, reason: probe.reason };
  const adapter = probe.adapter;
  if (requireHardware && adapter.software) {
    return {
      backend: 'webgpu',
      ok: false,
      adapter,
      reason: `its adapter is a software rasteriser (${describeAdapter(adapter)}), slower than the CPU kernels; ask for it with "backend": "webgpu"`,
    };
  }
  try {
    const ready = await tf.setBackend('webgpu');
    if (!ready) return { backend: 'webgpu', ok: false, adapter, reason: `the WebGPU backend failed to initialise on ${describeAdapter(adapter)}` };
  } catch (error) {
    return { backend: 'webgpu', ok: false, adapter, reason: `the WebGPU backend failed on ${describeAdapter(adapter)}: ${(error as Error).message}` };
  }
  return {
    backend: 'webgpu',
    ok: true,
    adapter,
    reason: `tfjs-backend-webgpu on Dawn (${adapter.features.includes('shader-f16') ? 'shader-f16' : 'no shader-f16'})`,
  };
}
