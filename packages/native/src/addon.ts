import * as path from 'node:path';

/** The C functions of the addon (csrc/skd_native.c); all work in place on wasm-heap views. */
export interface NativeAddon {
  sgemmBatch(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    aOffsets: Int32Array,
    bOffsets: Int32Array,
    M: number,
    N: number,
    K: number,
    transposeA: boolean,
    transposeB: boolean,
  ): void;
  biasActivation(c: Float32Array, bias: Float32Array | null, rows: number, cols: number, biasMode: number, activation: number, alpha: number): void;
  unsortedSegmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, rows: number, inner: number, numSegments: number): void;
  setThreads(threads: number): number;
  sumMiddle(x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number): void;
  unary(op: 0 | 1, x: Float32Array, out: Float32Array, n: number): void;
  gatherRows(table: Float32Array, indices: Int32Array, out: Float32Array, count: number, inner: number, rows: number): number;
}

export const ADDON_PATH = path.join(__dirname, '..', 'build', 'Release', 'skd_native.node');

export interface AddonLoad {
  readonly addon: NativeAddon | undefined;
  /** Why it is (not) available, with what to do about it. */
  readonly reason: string;
}

let cached: AddonLoad | undefined;

/** Loads the compiled addon once. Absence is normal (no OpenBLAS at install): the reason says how to get it. */
export function loadAddon(): AddonLoad {
  if (cached) return cached;
  if (process.env['SKD_NATIVE'] === 'off') {
    cached = { addon: undefined, reason: 'native kernels disabled (SKD_NATIVE=off)' };
    return cached;
  }
  try {
    cached = { addon: require(ADDON_PATH) as NativeAddon, reason: `OpenBLAS addon loaded (${ADDON_PATH})` };
  } catch (error) {
    const missing = (error as { code?: string }).code === 'MODULE_NOT_FOUND';
    cached = {
      addon: undefined,
      reason: missing
        ? 'OpenBLAS kernels not built; for 10x+ faster CPU training run: apt-get install libopenblas-dev && npm rebuild @skd/native'
        : `OpenBLAS kernels failed to load (${(error as Error).message}); rebuild with: npm rebuild @skd/native`,
    };
  }
  return cached;
}
