import type * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { SkdError } from '@skd/core';

type Values = tf.backend_util.BackendValues;

/**
 * Bytes of freed kernel outputs the native backend keeps for reuse: SKD_POOL_BYTES, else 1 GiB (a run's
 * `training.outputPoolBytes` sets it for that run).
 * A speed-for-memory trade: at the 360M -> 135M distillation shape a 256 MiB pool lowered the peak
 * from 4.65 to 3.83 GB (bf16 teacher, checkpointed layers, chunked loss) and 0 to 3.60 GB, while
 * the SmolLM2-135M-shape training step took 5.9 and 6.7 s against 4.6 s with 1 GiB.
 */
export function poolBytes(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['SKD_POOL_BYTES'];
  if (text === undefined || text === '') return 2 ** 30;
  const bytes = Number(text);
  if (!Number.isInteger(bytes) || bytes < 0) {
    throw new SkdError(`SKD_POOL_BYTES must be a whole number of bytes >= 0, got "${text}"`, {
      hint: 'e.g. SKD_POOL_BYTES=268435456 (256 MiB); 0 turns the pool off',
    });
  }
  return bytes;
}

/**
 * Outputs smaller than this are plain allocations. Above it every output is pooled, small ones too: a
 * decode step of a 30-layer model writes about a thousand outputs of 1-64 KiB, and as fresh arrays
 * they added 340 MB of external memory to each SKD sampling call, for which V8 ran a full
 * mark-compact every 64 MB (docs/performance.md, "A seventh sitting").
 */
const MIN_POOLED_BYTES = 1 << 10;

/** Outputs up to this size are pooled at their exact size; above it, by size class (pooledSize). */
const EXACT_BYTES = 1 << 16;

/**
 * The pool's buffer size for an output of `bytes`: the next of eight sizes per power of two (at most
 * 12.5% over). Exact sizes would miss whenever a batch's length changes (every prompt batch in
 * generation, every training batch), and each miss pays its page faults again (docs/performance.md,
 * "A fifth sitting").
 */
export function pooledSize(bytes: number): number {
  if (bytes <= EXACT_BYTES) return bytes;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

/**
 * skd's `native` backend: tfjs-backend-cpu's storage (each tensor its own typed array: no 4 GB wasm
 * heap) with a pool for the outputs of skd's native kernels. A fresh typed array costs its page
 * faults on first write (measured here: a GELU over 12 MB took 5x longer into fresh memory), and a
 * training step writes gigabytes; buffers of disposed tensors are reused instead, as wasm's heap
 * reuses freed memory. A pooled buffer returns to the pool only when no tensor holds a view of it,
 * and reads (`dataSync`, `data`) hand out copies, so no caller's array changes under it.
 */
export class NativeBackend extends MathBackendCPU {
  /** Live views per pooled buffer. */
  private readonly views = new WeakMap<ArrayBufferLike, number>();
  /** Freed buffers by size, the size freed least recently first (a full pool lets those go first). */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;

  constructor(private poolLimit = poolBytes()) {
    super();
  }

  /** Bytes of freed outputs kept for reuse at most (see poolBytes). */
  get poolLimitBytes(): number {
    return this.poolLimit;
  }

  /** Sets how many bytes of freed outputs are kept (a run's `training.outputPoolBytes`), letting go of any above it. */
  setPoolLimit(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 0) throw new SkdError(`the output pool's size must be a whole number of bytes >= 0, got ${bytes}`);
    this.poolLimit = bytes;
    if (this.freeBytes > bytes) this.evict(this.freeBytes - bytes);
  }

  /**
   * A typed array for a kernel's output: a view of `count` values at the start of a buffer of its
   * size class (pooledSize), reused from a disposed tensor when the pool holds one.
   */
  allocate(dtype: tf.DataType, count: number): Float32Array | Int32Array | Uint8Array {
    const width = dtype === 'bool' ? 1 : 4;
    const bytes = count * width;
    if (bytes < MIN_POOLED_BYTES) return dtype === 'int32' ? new Int32Array(count) : dtype === 'bool' ? new Uint8Array(count) : new Float32Array(count);
    const size = pooledSize(bytes);
    const reused = this.free.get(size)?.pop();
    if (reused) this.freeBytes -= size;
    const buffer = reused ?? new ArrayBuffer(size);
    this.views.set(buffer, 0);
    return dtype === 'int32' ? new Int32Array(buffer, 0, count) : dtype === 'bool' ? new Uint8Array(buffer, 0, count) : new Float32Array(buffer, 0, count);
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): tf.DataId {
    this.retain(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: tf.DataId, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.retain(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const disposed = super.disposeData(dataId, force);
    if (disposed && values) this.release(values);
    return disposed;
  }

  override readSync(dataId: tf.DataId): Values {
    const values = super.readSync(dataId);
    return ArrayBuffer.isView(values) && this.views.has(values.buffer) ? (values as Float32Array).slice() : values;
  }

  /** Replaces a tensor's storage (a dtype conversion), keeping the pool's counts right. */
  replaceValues(dataId: tf.DataId, values: Values): void {
    const entry = this.data.get(dataId);
    if (!entry) return;
    this.retain(values);
    if (entry.values) this.release(entry.values);
    entry.values = values;
  }

  private retain(values: Values | undefined): void {
    if (!ArrayBuffer.isView(values)) return;
    const n = this.views.get(values.buffer);
    if (n !== undefined) this.views.set(values.buffer, n + 1);
  }

  private release(values: Values): void {
    if (!ArrayBuffer.isView(values)) return;
    const n = this.views.get(values.buffer);
    if (n === undefined) return;
    if (n > 1) {
      this.views.set(values.buffer, n - 1);
      return;
    }
    this.views.delete(values.buffer);
    const buffer = values.buffer as ArrayBuffer;
    const size = buffer.byteLength;
    if (size > this.poolLimit) return;
    // A full pool makes room by letting go of the sizes freed least recently: after a phase of other
    // shapes (a training step before a sampling call), the sizes now in use are kept, where refusing
    // them would allocate (and fault) every layer's outputs afresh.
    if (this.freeBytes + size > this.poolLimit) this.evict(this.freeBytes + size - this.poolLimit);
    const list = this.free.get(size) ?? [];
    this.free.delete(size); // re-inserted last: the most recently freed size
    list.push(buffer);
    this.free.set(size, list);
    this.freeBytes += size;
  }

  /** Lets go of at least `bytes` of freed buffers, the least recently freed sizes first. */
  private evict(bytes: number): void {
    let dropped = 0;
    for (const [size, list] of this.free) {
      while (dropped < bytes && list.length > 0) {
        list.pop();
        dropped += size;
      }
      if (list.length === 0) this.free.delete(size);
      if (dropped >= bytes) break;
    }
    this.freeBytes -= dropped;
  }
}
