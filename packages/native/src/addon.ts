import * as fs from 'node:fs';
import * as os from 'node:os';
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
  /** Sets the thread pool size (n >= 1; 0 keeps it) and returns the size in use. */
  setThreads(threads: number): number;
  /** The BLAS the addon was built against ("oneDNN" or "OpenBLAS"). */
  blas(): string;
  sumMiddle(x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number): void;
  unary(op: 0 | 1 | 2, x: Float32Array, out: Float32Array, n: number): void;
  /** out = a + b, elementwise over n floats. */
  addSame(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  /** Each of `batch` (rows, cols) matrices transposed to (cols, rows). */
  transposeLast2(x: Float32Array, out: Float32Array, batch: number, rows: number, cols: number): void;
  gelu(x: Float32Array, out: Float32Array, n: number): void;
  geluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, n: number): void;
  gatherRows(table: Float32Array, indices: Int32Array, out: Float32Array, count: number, inner: number, rows: number): number;
  linear(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    residual: Float32Array | null,
    out: Float32Array,
    rows: number,
    inputs: number,
    outputs: number,
  ): void;
  /**
   * out = residual + x op(w) + bias with w held in 16 bits (kind 0 bfloat16, 1 float16), widened a tile
   * at a time and multiplied in float32; w is stored (inputs, outputs), or (outputs, inputs) when trans.
   */
  linearHalf(
    x: Float32Array,
    w: Uint16Array,
    kind: 0 | 1,
    trans: boolean,
    bias: Float32Array | null,
    residual: Float32Array | null,
    out: Float32Array,
    rows: number,
    inputs: number,
    outputs: number,
  ): void;
  /** Rows of a 16-bit table widened to float32; the first out-of-range index's position, or -1. */
  gatherHalf(table: Uint16Array, kind: 0 | 1, indices: Int32Array, out: Float32Array, count: number, inner: number, rows: number): number;
  /** n 16-bit values widened to float32. */
  widenHalf(src: Uint16Array, kind: 0 | 1, out: Float32Array, n: number): void;
  linearGrad(
    dy: Float32Array,
    x: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
    dbias: Float32Array | null,
    rows: number,
    inputs: number,
    outputs: number,
  ): void;
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    width: number,
    epsilon: number,
  ): void;
  layerNormGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    width: number,
  ): void;
  rmsNorm(x: Float32Array, weight: Float32Array, y: Float32Array, rstd: Float32Array, rows: number, width: number, epsilon: number, offset: number): void;
  rmsNormGrad(
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dweight: Float32Array,
    rows: number,
    width: number,
    offset: number,
  ): void;
  rotary(
    x: Float32Array,
    positions: Int32Array,
    frequencies: Float32Array,
    y: Float32Array,
    rows: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    inverse: boolean,
  ): void;
  /** activation: 0 SiLU, 1 exact GELU, 2 tanh GELU. */
  gatedActivation(x: Float32Array, y: Float32Array, rows: number, hidden: number, activation: number): void;
  gatedActivationGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, rows: number, hidden: number, activation: number): void;
  /** Grouped-query causal attention over packed q|k|v rows (see attention.c); softcap and window 0 when off. */
  attention(
    qkv: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    lse: Float32Array,
    batch: number,
    T: number,
    heads: number,
    kvHeads: number,
    headSize: number,
    scale: number,
    softcap: number,
    window: number,
  ): void;
  attentionGrad(
    qkv: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    lse: Float32Array,
    dy: Float32Array,
    dqkv: Float32Array,
    batch: number,
    T: number,
    heads: number,
    kvHeads: number,
    headSize: number,
    scale: number,
    softcap: number,
    window: number,
  ): void;
  cachedAttention(
    qkv: Float32Array,
    keys: Float32Array,
    values: Float32Array,
    lengths: Int32Array,
    mask: Float32Array,
    out: Float32Array,
    batch: number,
    S: number,
    heads: number,
    kvHeads: number,
    headSize: number,
    capacity: number,
    scale: number,
    softcap: number,
    window: number,
  ): void;
  gptDecode(
    params: Float32Array[],
    keys: Float32Array[],
    values: Float32Array[],
    tokens: Int32Array,
    positions: Int32Array,
    mask: Float32Array,
    lengths: Int32Array,
    logits: Float32Array,
    S: number,
    lastOnly: boolean,
    ...model: GptShape
  ): void;
  /** Returns -1, or the first row whose logits could not be sampled (see gpt_decode.c). */
  gptGenerate(
    params: Float32Array[],
    keys: Float32Array[],
    values: Float32Array[],
    lengths: Int32Array,
    logits: Float32Array | null,
    feed: Int32Array,
    live: Int32Array,
    budgets: Int32Array,
    rngState: Int32Array,
    tokens: Int32Array,
    counts: Int32Array,
    steps: number,
    eos: number,
    temperature: number,
    topK: number,
    topP: number,
    greedy: boolean,
    ...model: GptShape
  ): number;
  logSoftmax(x: Float32Array, y: Float32Array, rows: number, width: number): void;
  logSoftmaxGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, width: number): void;
  /** Returns the first row whose target is out of range, or -1. */
  crossEntropy(logits: Float32Array, targets: Int32Array, loss: Float32Array, lse: Float32Array, rows: number, width: number): number;
  crossEntropyGrad(dy: Float32Array, logits: Float32Array, targets: Int32Array, lse: Float32Array, dx: Float32Array, rows: number, width: number): void;
  /** loss[r] = KL(p_r || softmax(logits_r)) from teacher log-probabilities; lse[r] = logsumexp(logits_r). */
  forwardKl(logP: Float32Array, logits: Float32Array, loss: Float32Array, lse: Float32Array, rows: number, width: number): void;
  /** dx = dy[r] (softmax(logits_r) - exp(logP_r)). */
  forwardKlGrad(dy: Float32Array, logP: Float32Array, logits: Float32Array, lse: Float32Array, dx: Float32Array, rows: number, width: number): void;
  /** loss[r] = a KL(p_r || m_r) + b KL(q_r || m_r), m = w p + (1 - w) q, q = softmax(logits_r); lse[r] = logsumexp(logits_r). */
  mixtureKl(
    logP: Float32Array,
    logits: Float32Array,
    loss: Float32Array,
    lse: Float32Array,
    rows: number,
    width: number,
    w: number,
    a: number,
    b: number,
  ): void;
  /** dx = dy[r] q (g - sum q g), g the loss's derivative in q (see divergence.c). */
  mixtureKlGrad(
    dy: Float32Array,
    logP: Float32Array,
    logits: Float32Array,
    lse: Float32Array,
    dx: Float32Array,
    rows: number,
    width: number,
    w: number,
    a: number,
    b: number,
  ): void;
  adamw(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    outParam: Float32Array,
    outM: Float32Array,
    outV: Float32Array,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    decay: number,
    c1: number,
    c2: number,
  ): void;
  /** Returns the first failed row, or -1 (see sampling.c). */
  sampleTokens(
    logits: Float32Array,
    ids: Int32Array,
    rows: number,
    width: number,
    uniforms: Float64Array,
    temperature: number,
    topK: number,
    topP: number,
    greedy: boolean,
  ): number;
}

/** A GPT's shape as the decode functions take it: batch, layers, heads, dModel, dFf, vocab, cache capacity, position rows, LayerNorm epsilon, rotary. */
// prettier-ignore
export type GptShape = [batch: number, layers: number, heads: number, dModel: number, dFf: number, vocab: number, capacity: number, contextRows: number, epsilon: number, rotary: boolean];

/** The vector instruction sets the addon is built for on x86-64, best first (x86-64-v4, -v3, -v2). */
export const ISA_LEVELS = ['avx512', 'avx2', 'baseline'] as const;
export type IsaLevel = (typeof ISA_LEVELS)[number];

const ISA_NAMES: Record<IsaLevel, string> = { avx512: 'AVX-512 (x86-64-v4)', avx2: 'AVX2 (x86-64-v3)', baseline: 'SSE4.2 (x86-64-v2)' };
/** The CPU flags each level's compiler target assumes (gcc's -march=x86-64-vN), as /proc/cpuinfo names them. */
const ISA_FLAGS: Record<IsaLevel, readonly string[]> = {
  avx512: ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx2', 'fma', 'bmi2'],
  avx2: ['avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe'],
  baseline: ['sse4_2', 'popcnt', 'ssse3'],
};
/** oneDNN's own cap for each level, so a lower level runs its matrix products at that level too. */
const ONEDNN_ISA: Record<IsaLevel, string> = { avx512: 'AVX512_CORE', avx2: 'AVX2', baseline: 'SSE41' };

const RELEASE = path.join(__dirname, '..', 'build', 'Release');
/** The addon built for the machine itself (the build on other architectures). */
export const ADDON_PATH = path.join(RELEASE, 'skd_native.node');
/** The addon built for one x86-64 level. */
export const addonPathFor = (level: IsaLevel): string => path.join(RELEASE, `skd_native_${level}.node`);

/** The CPU's model name and flags, from /proc/cpuinfo (empty where it cannot be read). */
export function cpuFeatures(cpuinfo?: string): { model: string; flags: ReadonlySet<string> } {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean));
  return { model, flags };
}

/** The best level the CPU runs, or undefined when its flags are unknown (not Linux, not x86-64). */
export function detectIsa(flags: ReadonlySet<string>): IsaLevel | undefined {
  if (flags.size === 0) return undefined;
  return ISA_LEVELS.find((level) => ISA_FLAGS[level].every((f) => flags.has(f)));
}

/**
 * The level to load: SKD_ISA when set (a level the CPU lacks is refused: it would stop the process
 * on its first instruction), else the best the CPU runs.
 */
export function chooseIsa(env: NodeJS.ProcessEnv, flags: ReadonlySet<string>): { level: IsaLevel | undefined; error?: string } {
  const detected = detectIsa(flags);
  const asked = env['SKD_ISA'];
  if (asked === undefined || asked === '' || asked === 'auto') return { level: detected };
  if (!(ISA_LEVELS as readonly string[]).includes(asked)) return { level: undefined, error: `SKD_ISA=${asked} is not one of ${ISA_LEVELS.join(', ')}, auto` };
  const level = asked as IsaLevel;
  if (flags.size > 0 && !ISA_FLAGS[level].every((f) => flags.has(f))) {
    const missing = ISA_FLAGS[level].filter((f) => !flags.has(f));
    return { level: undefined, error: `SKD_ISA=${level}: this CPU lacks ${missing.join(', ')}; it runs ${detected ?? 'none of the levels'}` };
  }
  return { level };
}

export interface AddonLoad {
  readonly addon: NativeAddon | undefined;
  /** The x86-64 level whose build was loaded (undefined: the machine's own build, or none). */
  readonly isa?: IsaLevel;
  /** The file loaded. */
  readonly file?: string;
  /** Why it is (not) available, with what to do about it. */
  readonly reason: string;
}

let cached: AddonLoad | undefined;

/**
 * How the kernels' OpenMP threads wait between parallel regions, chosen before libgomp loads (it
 * reads the environment once, when the addon is opened): passively, unless the user set
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT. libgomp's own default spins 300,000 times first; with more busy
 * threads than cores (two skd processes on two cores) the spinning threads hold the cores the
 * working ones need, and an SKD step of the arithmetic main job went from 0.17 s to 1.1 s
 * (tools/bench/lanes.cjs). Returns the policy in effect, for the backend line.
 */
export function chooseThreadWaiting(env: NodeJS.ProcessEnv = process.env): string {
  if (env['OMP_WAIT_POLICY'] !== undefined) return `OMP_WAIT_POLICY=${env['OMP_WAIT_POLICY']}`;
  if (env['GOMP_SPINCOUNT'] !== undefined) return `GOMP_SPINCOUNT=${env['GOMP_SPINCOUNT']}`;
  env['OMP_WAIT_POLICY'] = 'PASSIVE';
  return 'OMP_WAIT_POLICY=PASSIVE';
}

/** Loads the compiled addon once. Absence is normal (no BLAS at install): the reason says how to get it. */
export function loadAddon(): AddonLoad {
  if (cached) return cached;
  if (process.env['SKD_NATIVE'] === 'off') {
    cached = { addon: undefined, reason: 'native kernels disabled (SKD_NATIVE=off)' };
    return cached;
  }
  chooseThreadWaiting();
  const cpu = cpuFeatures();
  const { level, error: refused } = chooseIsa(process.env, cpu.flags);
  if (refused) {
    cached = { addon: undefined, reason: `native kernels not loaded: ${refused}` };
    return cached;
  }
  // The level's own build where there is one (x86-64), else the machine's; oneDNN capped at the same level.
  const file = level && fs.existsSync(addonPathFor(level)) ? addonPathFor(level) : ADDON_PATH;
  if (level && file !== ADDON_PATH && process.env['ONEDNN_MAX_CPU_ISA'] === undefined) process.env['ONEDNN_MAX_CPU_ISA'] = ONEDNN_ISA[level];
  try {
    const addon = require(file) as NativeAddon;
    const isa = file === ADDON_PATH ? 'built for this machine' : `${ISA_NAMES[level as IsaLevel]} kernels`;
    cached = {
      addon,
      file,
      ...(file === ADDON_PATH ? {} : { isa: level as IsaLevel }),
      reason: `${addon.blas()} addon loaded, ${isa} on ${cpu.model} (${file})`,
    };
  } catch (error) {
    const missing = (error as { code?: string }).code === 'MODULE_NOT_FOUND';
    cached = {
      addon: undefined,
      reason: missing
        ? 'native kernels not built; for 20x+ faster CPU training run: apt-get install libdnnl-dev && npm rebuild @skd/native'
        : `native kernels failed to load (${(error as Error).message}); rebuild with: npm rebuild @skd/native`,
    };
  }
  return cached;
}
