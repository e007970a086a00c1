import * as tf from '@tensorflow/tfjs-core';

/**
 * skd's fused losses over the vocabulary as WebGPU programs, for the `webgpu` backend: on tfjs's own
 * kernels a cross-entropy or forward KL over (rows, V) logits is a log-softmax, a one-hot or an
 * exp, products and sums, each a (rows, V) tensor in GPU memory and a dispatch; here each is one
 * pass per row that keeps only (rows) values (the log-sum-exp) for the backward, which is one
 * elementwise pass. Kernel names and signatures are @skd/ops's (`SkdCrossEntropy` → [loss, lse],
 * `SkdCrossEntropyGrad`, `SkdForwardKl` → [loss, lse], `SkdForwardKlGrad`), so the ops pick them
 * up as they pick up the native kernels.
 */

/** What skd needs of tfjs-backend-webgpu's backend: running a program. */
interface ProgramRunner {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: unknown, output?: tf.TensorInfo): tf.TensorInfo;
}

/** tfjs-backend-webgpu's program description (`WebGPUProgram`), the fields skd's programs use. */
interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  getUserCode(): string;
}

/** Runs a program: into a new output, or into `output` (an existing tensor, written in place), of `dtype` (default float32). */
type Run = (backend: unknown, program: WebGpuProgram, inputs: tf.TensorInfo[], output?: tf.TensorInfo, dtype?: tf.DataType) => tf.TensorInfo;

/** A float32 value as a WGSL literal. */
const wgslFloat = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${Math.fround(x)}`);

interface WebGpuUtil {
  computeDispatch(layout: { x: number[] }, outputShape: number[], workgroupSize: [number, number, number]): [number, number, number];
}

const ROW_BLOCK = 64;
const ELEMENT_BLOCK = 64;

/** WGSL that reduces `value` over the workgroup with `op` into `buf[0]`, then copies it to every thread as `name`. */
function reduce(value: string, op: 'max' | 'sum', name: string): string {
  const combine = op === 'max' ? 'max(buf[tid], buf[tid + size])' : 'buf[tid] + buf[tid + size]';
  return `
      buf[tid] = ${value};
      workgroupBarrier();
      for (var size = ${ROW_BLOCK / 2}; size > 0; size = size >> 1) {
        if (tid < size) { buf[tid] = ${combine}; }
        workgroupBarrier();
      }
      let ${name} = buf[0];
      workgroupBarrier();`;
}

/** WGSL for one workgroup per row: the row's log-sum-exp of `getLogits` as `lse`. */
const rowLogSumExp = `
      var m = -3.402823e+38f;
      for (var col = tid; col < cols; col += ${ROW_BLOCK}) { m = max(m, getLogits(row, col)); }
      ${reduce('m', 'max', 'rowMax')}
      var s = 0.0;
      for (var col = tid; col < cols; col += ${ROW_BLOCK}) { s += exp(getLogits(row, col) - rowMax); }
      ${reduce('s', 'sum', 'rowSum')}
      let lse = rowMax + log(rowSum);`;

/** A program with one workgroup per row of a (rows, V) input, writing one value per row. */
function rowProgram(shaderKey: string, variableNames: string[], rows: number, body: string): WebGpuProgram {
  return {
    variableNames,
    outputShape: [rows],
    shaderKey,
    dispatchLayout: { x: [0] },
    dispatch: [rows, 1, 1],
    workgroupSize: [ROW_BLOCK, 1, 1],
    getUserCode: () => `
    var<workgroup> buf : array<f32, ${ROW_BLOCK}>;
    fn main(index : i32) {
      let row = index / ${ROW_BLOCK};
      let tid = i32(localId.x);
      let cols = uniforms.logitsShape[1];
      ${body}
    }`,
  };
}

/** A program with one thread per element of a (rows, V) output. */
function elementProgram(util: WebGpuUtil, shaderKey: string, variableNames: string[], shape: [number, number], value: string): WebGpuProgram {
  const layout = { x: [0, 1] };
  return {
    variableNames,
    outputShape: shape,
    shaderKey,
    dispatchLayout: layout,
    dispatch: util.computeDispatch(layout, shape, [ELEMENT_BLOCK, 1, 1]),
    workgroupSize: [ELEMENT_BLOCK, 1, 1],
    size: true,
    getUserCode: () => `
    fn main(index : i32) {
      if (index < uniforms.size) {
        let coords = getCoordsFromIndex(index);
        let row = coords[0];
        let col = coords[1];
        setOutputAtIndex(index, ${value});
      }
    }`,
  };
}

/** The same data seen with another shape (tfjs's reshape of a contiguous tensor). */
const viewed = (x: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: x.dataId, shape, dtype: x.dtype });

/** (..., V) → [rows, V] and the leading shape. */
function rowsOf(x: tf.TensorInfo): { rows: number; V: number; lead: number[] } {
  const V = x.shape[x.shape.length - 1] as number;
  const lead = x.shape.slice(0, -1);
  return { rows: lead.reduce((n, d) => n * d, 1), V, lead };
}

/** Each row's log-sum-exp of (rows, V) logits: (rows). */
function rowLse(run: Run, backend: unknown, x: tf.TensorInfo, rows: number): tf.TensorInfo {
  return run(backend, rowProgram('skd_row_lse', ['logits'], rows, `${rowLogSumExp}\n      if (tid == 0) { setOutputAtIndex(row, lse); }`), [x]);
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** The shape of a cached attention call, baked into its programs (a decode state keeps B, heads and capacity; S takes a few values). */
interface CacheShape {
  readonly B: number;
  readonly S: number;
  readonly H: number;
  readonly Hkv: number;
  readonly dh: number;
  readonly cap: number;
  readonly scale: number;
  readonly softcap: number;
  readonly window: number;
}

/** WGSL constants of a cache shape, and `slotOf(b, j)`: the cache slot of row b's column j (its length plus the real columns before j). */
function cacheHeader(c: CacheShape): string {
  return `
    const B = ${c.B}; const S = ${c.S}; const H = ${c.H}; const HKV = ${c.Hkv}; const DH = ${c.dh}; const CAP = ${c.cap};
    const LD = ${(c.H + 2 * c.Hkv) * c.dh}; const GROUP = ${c.H / c.Hkv}; const WINDOW = ${c.window};
    const SCALE = ${wgslFloat(c.scale)}; const SOFTCAP = ${wgslFloat(c.softcap)};
    fn slotOf(b : i32, j : i32) -> i32 {
      var slot = lengths[b];
      for (var i = 0; i < j; i++) { if (mask[b * S + i] != 0.0) { slot++; } }
      return slot;
    }`;
}

/** Most attention scores one cached-attention program holds at once (64 MiB of float32). */
let SCORE_ELEMENTS = 1 << 24;

/** Sets the scores budget (elements) and returns the old one: for tests, to make small calls take several chunks. */
export function setScoreBudget(elements: number): number {
  const old = SCORE_ELEMENTS;
  SCORE_ELEMENTS = elements;
  return old;
}

const cacheKey = (name: string, c: CacheShape) => `${name}_${c.B}_${c.S}_${c.H}_${c.Hkv}_${c.dh}_${c.cap}_${c.scale}_${c.softcap}_${c.window}`;

/** A program over `count` threads (one per element of a part of its output), however large its output; its inputs include `lengths` (B). */
function flatProgram(shaderKey: string, variableNames: string[], outputShape: number[], count: number, prelude: string, body: string): WebGpuProgram {
  return {
    variableNames,
    outputShape,
    shaderKey,
    dispatchLayout: { x: [0] },
    dispatch: [Math.max(1, Math.ceil(count / ELEMENT_BLOCK)), 1, 1],
    workgroupSize: [ELEMENT_BLOCK, 1, 1],
    getUserCode: () => `
    ${prelude}
    fn main(index : i32) {
      // (The uniforms are read so the pipeline's layout has the binding tfjs always supplies.)
      if (index < ${count} && uniforms.lengthsShape == B) {
        ${body}
      }
    }`,
  };
}

/**
 * Attention of S new slots per row over a preallocated cache, as @skd/native's SkdCachedAttention
 * (same inputs, attributes and result): the real slots' keys and values are written into the cache
 * tensors in place (each belongs to one decode state), each real query attends its row's cached
 * keys and, causally, the new ones (within a window where the layer has one); padding slots are
 * neither written nor attended and their outputs are 0. Programs: write keys, write values, then per
 * chunk of query rows the scores (rows*H, capacity) and one workgroup per (slot, head) for the softmax
 * and the weighted sum.
 */
function cachedAttention(
  run: Run,
  backend: unknown,
  inputs: Record<'qkv' | 'keys' | 'values' | 'lengths' | 'mask', tf.TensorInfo>,
  attrs: { heads: number; kvHeads?: number; scale: number; softcap?: number; window?: number },
): tf.TensorInfo {
  const { qkv, keys, values, lengths, mask } = inputs;
  const [B, Hkv, dh, cap] = keys.shape as [number, number, number, number];
  const [rows, width] = qkv.shape as [number, number];
  const H = attrs.heads;
  if (
    Hkv !== (attrs.kvHeads ?? H) ||
    H % Hkv !== 0 ||
    width !== (H + 2 * Hkv) * dh ||
    rows % B !== 0 ||
    lengths.dtype !== 'int32' ||
    mask.dtype !== 'float32'
  ) {
    throw new Error(`SkdCachedAttention: qkv [${qkv.shape.join(', ')}] does not fit the cache [${keys.shape.join(', ')}]`);
  }
  const c: CacheShape = { B, S: rows / B, H, Hkv, dh, cap, scale: attrs.scale, softcap: attrs.softcap ?? 0, window: attrs.window ?? 0 };
  const header = cacheHeader(c);
  // Thread (b, j, g, d): element d of kv head g of row b's column j, when that column is real.
  const write = (part: 'keys' | 'values') =>
    flatProgram(
      cacheKey(`skd_cache_write_${part}`, c),
      ['qkv', 'lengths', 'mask'],
      (part === 'keys' ? keys : values).shape,
      B * c.S * Hkv * dh,
      header,
      `
        let d = index % DH;
        let g = (index / DH) % HKV;
        let j = (index / (DH * HKV)) % S;
        let b = index / (DH * HKV * S);
        if (mask[b * S + j] != 0.0) {
          let slot = slotOf(b, j);
          ${
            part === 'keys'
              ? 'setOutputAtIndex(((b * HKV + g) * DH + d) * CAP + slot, qkv[(b * S + j) * LD + (H + g) * DH + d]);'
              : 'setOutputAtIndex(((b * HKV + g) * CAP + slot) * DH + d, qkv[(b * S + j) * LD + (H + HKV + g) * DH + d]);'
          }
        }`,
    );
  run(backend, write('keys'), [qkv, lengths, mask], keys);
  run(backend, write('values'), [qkv, lengths, mask], values);
  // Thread (b, j, h, k): the score of query (b, j, h) against key slot k, where visible (else unused).
  // A real query at slot hi sees slots lo..hi; a padding slot sees none (hi < lo).
  const visible = `
        let hi = select(-1, slotOf(b, j), mask[b * S + j] != 0.0);
        let lo = select(0, max(0, hi - WINDOW + 1), WINDOW > 0);`;
  // Query rows go in chunks whose scores (rows x heads x capacity) fit SCORE_ELEMENTS, so a long
  // prefill over a large cache stays within a storage buffer's limit; each chunk writes its rows of
  // the one output in place.
  const chunkRows = Math.max(1, Math.min(rows, Math.floor(SCORE_ELEMENTS / (H * cap))));
  const out = (backend as { makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo }).makeTensorInfo([rows, H * dh], 'float32');
  for (let first = 0; first < rows; first += chunkRows) {
    const n = Math.min(chunkRows, rows - first);
    const chunk = `
    const FIRST = ${first}; const ROWS = ${n};`;
    // Thread (local row, h, k): the score of the row's query head h against key slot k, where visible (else unused).
    const scores = run(
      backend,
      flatProgram(
        cacheKey(`skd_cache_scores_${first}_${n}`, c),
        ['qkv', 'keys', 'lengths', 'mask'],
        [n * H, cap],
        n * H * cap,
        header + chunk,
        `
        let k = index % CAP;
        let h = (index / CAP) % H;
        let j = (FIRST + index / (CAP * H)) % S;
        let b = (FIRST + index / (CAP * H)) / S;
        ${visible}
        var s = 0.0;
        if (k >= lo && k <= hi) {
          let g = h / GROUP;
          for (var d = 0; d < DH; d++) { s += qkv[(b * S + j) * LD + h * DH + d] * keys[((b * HKV + g) * DH + d) * CAP + k]; }
          s *= SCALE;
          if (SOFTCAP > 0.0) { s = SOFTCAP * tanh(s / SOFTCAP); }
        }
        setOutputAtIndex(index, s);`,
      ),
      [qkv, keys, lengths, mask],
    );
    // The barriers of the reductions are reached by every thread (WGSL's uniformity rule): a padding
    // slot runs them over an empty range and writes zeros.
    const program: WebGpuProgram = {
      variableNames: ['scores', 'values', 'lengths', 'mask'],
      outputShape: [rows, H * dh],
      shaderKey: cacheKey(`skd_cache_attend_${first}_${n}`, c),
      dispatchLayout: { x: [0] },
      dispatch: [n * H, 1, 1],
      workgroupSize: [ROW_BLOCK, 1, 1],
      getUserCode: () => `
    ${header}${chunk}
    var<workgroup> buf : array<f32, ${ROW_BLOCK}>;
    fn main(index : i32) {
      let q = index / ${ROW_BLOCK}; // (local row, head)
      let tid = i32(localId.x);
      let h = q % H;
      let j = (FIRST + q / H) % S;
      let b = (FIRST + q / H) / S;
      let real = mask[b * S + j] != 0.0 && uniforms.lengthsShape == B;
      ${visible}
      let row = q * CAP;
      var m = -3.402823e+38f;
      for (var k = lo + tid; k <= hi; k += ${ROW_BLOCK}) { m = max(m, scores[row + k]); }
      ${reduce('m', 'max', 'rowMax')}
      var t = 0.0;
      for (var k = lo + tid; k <= hi; k += ${ROW_BLOCK}) { t += exp(scores[row + k] - rowMax); }
      ${reduce('t', 'sum', 'rowSum')}
      let g = h / GROUP;
      let base = (b * S + j) * H * DH + h * DH;
      for (var d = tid; d < DH; d += ${ROW_BLOCK}) {
        var acc = 0.0;
        for (var k = lo; k <= hi; k++) { acc += exp(scores[row + k] - rowMax) * values[((b * HKV + g) * CAP + k) * DH + d]; }
        setOutputAtIndex(base + d, select(0.0, acc / rowSum, real));
      }
    }`,
    };
    run(backend, program, [scores, values, lengths, mask], out);
    (backend as { disposeData(dataId: unknown): void }).disposeData(scores.dataId);
  }
  return out;
}

const SAMPLE_BLOCK = 256;

/**
 * The sampling kernel's margin, as a fraction of the row's total mass: a categorical draw is decided
 * on the GPU only where the target lies further than this from both ends of the chosen token's
 * interval, so float32 arithmetic cannot pick another token than the float64 reference. The bound:
 * each term exp(x) (x = (l - max) / T <= 0) is off by at most (3 + 2|x|) ulp (WGSL's accuracy for
 * exp) plus |x| ulp from forming x, and sum_i p_i |x_i| <= total ln V over a row, so the terms
 * together are off by (6 + 4 ln V) 2^-23 of the total; the sums (a chunk's terms, then the chunks
 * before it) add (chunk + blocks + 2) 2^-24.
 */
export function sampleMargin(V: number): number {
  const chunk = Math.ceil(V / SAMPLE_BLOCK);
  return (6 + 4 * Math.log(V)) * 2 ** -23 + (chunk + SAMPLE_BLOCK + 2) * 2 ** -24;
}

/**
 * SkdSampleTokens on WebGPU: one workgroup per row reads the logits and writes only the chosen id,
 * so a decode step reads back B ids instead of the (B, V) logits. Greedy is decided exactly (the
 * first maximum). A temperature draw is the float64 reference's (cumulative in id order, ops'
 * chooseTokenWith) wherever the float32 sums leave no doubt (sampleMargin); the other rows, and
 * every row under top-k or top-p (whose kept set needs a sort), get -4: decide on the host. -2:
 * NaN or +inf in the row; -3: every logit -inf.
 */
function sampleTokens(
  run: Run,
  backend: unknown,
  logits: tf.TensorInfo,
  attrs: { uniforms: readonly number[]; temperature: number; topK: number; topP: number; greedy: boolean },
): tf.TensorInfo {
  const [B, V] = logits.shape as [number, number];
  if (logits.shape.length !== 2 || attrs.uniforms.length !== B || logits.dtype !== 'float32') {
    throw new Error(`SkdSampleTokens: logits [${logits.shape.join(', ')}] need (B, V) float32 and one uniform per row`);
  }
  const { greedy } = attrs;
  const host = !greedy && ((attrs.topK > 0 && attrs.topK < V) || attrs.topP < 1);
  const chunk = Math.ceil(V / SAMPLE_BLOCK);
  const uniforms = (backend as { makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo }).makeTensorInfo(
    [B],
    'float32',
    Float32Array.from(attrs.uniforms),
  );
  const program: WebGpuProgram = {
    variableNames: ['logits', 'draws'],
    outputShape: [B],
    shaderKey: `skd_sample_${V}_${greedy}_${host}_${attrs.temperature}`,
    dispatchLayout: { x: [0] },
    dispatch: [B, 1, 1],
    workgroupSize: [SAMPLE_BLOCK, 1, 1],
    getUserCode: () => `
    const V = ${V}; const CHUNK = ${chunk}; const TEMPERATURE = ${wgslFloat(attrs.temperature)}; const MARGIN = ${wgslFloat(sampleMargin(V))};
    var<workgroup> best : array<f32, ${SAMPLE_BLOCK}>;
    var<workgroup> found : array<i32, ${SAMPLE_BLOCK}>;
    var<workgroup> decided : array<i32, 2>; // the row's id so far (or a code), its maximum's bits
    fn main(index : i32) {
      let row = index / ${SAMPLE_BLOCK};
      let tid = i32(localId.x);
      let base = row * uniforms.logitsShape[1];
      let first = tid * CHUNK;
      let last = min(V, first + CHUNK);
      // Each thread's first maximum over a contiguous chunk of ids, and whether it saw NaN or +inf
      // (by their bits: a shader compiler may assume floats are finite).
      var m = 0.0;
      var at = -1;
      var bad = false;
      for (var i = first; i < last; i++) {
        let l = logits[base + i];
        let bits = bitcast<u32>(l);
        if ((bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u) { bad = true; }
        if (at < 0 || l > m) { m = l; at = i; }
      }
      best[tid] = m;
      found[tid] = select(select(at, V, at < 0), 2 * V, bad);
      workgroupBarrier();
      if (tid == 0) {
        // The first maximum over the chunks, in id order, or the row's failure.
        var top = 0.0;
        var arg = -1;
        var failed = false;
        for (var t = 0; t < ${SAMPLE_BLOCK}; t++) {
          if (found[t] == 2 * V) { failed = true; }
          if (found[t] < V && (arg < 0 || best[t] > top)) { top = best[t]; arg = found[t]; }
        }
        var id = arg;
        if (failed) { id = -2; }
        else if (arg < 0 || bitcast<u32>(top) == 0xff800000u) { id = -3; }
        else if (${host}) { id = -4; }
        else if (!${greedy}) { id = -5; } // to draw below
        decided[0] = id;
        decided[1] = bitcast<i32>(top);
      }
      workgroupBarrier();
      let drawing = decided[0] == -5;
      let top = bitcast<f32>(decided[1]);
      // Chunk masses in parallel; thread 0 then finds the chunk and the id the draw falls in.
      var mass = 0.0;
      if (drawing) { for (var i = first; i < last; i++) { mass += exp((logits[base + i] - top) / TEMPERATURE); } }
      best[tid] = mass;
      workgroupBarrier();
      if (tid == 0 && drawing) {
        var total = 0.0;
        for (var t = 0; t < ${SAMPLE_BLOCK}; t++) { total += best[t]; }
        let aim = draws[row] * total;
        var before = 0.0;
        var id = -4; // past the end by rounding: the host decides
        for (var t = 0; t < ${SAMPLE_BLOCK}; t++) {
          if (aim >= before + best[t]) { before += best[t]; continue; }
          // Within chunk t, summed in the same order as its mass, so the boundaries agree.
          for (var i = t * CHUNK; i < min(V, (t + 1) * CHUNK); i++) {
            let p = exp((logits[base + i] - top) / TEMPERATURE);
            if (p == 0.0) { continue; }
            let after = before + p;
            if (aim < after) {
              if (aim - before >= MARGIN * total && after - aim >= MARGIN * total) { id = i; }
              break;
            }
            before = after;
          }
          break;
        }
        decided[0] = id;
      }
      if (tid == 0) { setOutputAtIndex(row, f32(decided[0])); } // (tfjs converts to the int32 output)
    }`,
  };
  const ids = run(backend, program, [logits, uniforms], undefined, 'int32');
  (backend as { disposeData(dataId: unknown): void }).disposeData(uniforms.dataId);
  return ids;
}

/** Registers the fused loss kernels for the `webgpu` backend (once; later calls change nothing). */
export function registerWebGpuKernels(util: WebGpuUtil): void {
  if (tf.getKernel('SkdCrossEntropy', 'webgpu')) return;
  const run: Run = (backend, program, inputs, output, dtype = 'float32') =>
    (backend as ProgramRunner).runWebGPUProgram(program, inputs, dtype, undefined, output);
  const kernel = (kernelName: string, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });

  kernel('SkdCrossEntropy', ({ inputs, backend }) => {
    const logSumExp = (x: tf.TensorInfo, rows: number) => rowLse(run, backend, x, rows);
    const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
    const { rows, V, lead } = rowsOf(logits);
    const x = viewed(logits, [rows, V]);
    const ids = viewed(targets, [rows]);
    const lse = logSumExp(x, rows);
    const loss = run(
      backend,
      rowProgram(
        'skd_cross_entropy',
        ['logits', 'targets', 'lse'],
        rows,
        'if (tid == 0) { setOutputAtIndex(row, getLse(row) - getLogits(row, i32(getTargets(row)))); }',
      ),
      [x, ids, lse],
    );
    return [viewed(loss, lead), viewed(lse, lead)];
  });

  kernel('SkdCrossEntropyGrad', ({ inputs, backend }) => {
    const { dy, logits, targets, lse } = inputs as Record<'dy' | 'logits' | 'targets' | 'lse', tf.TensorInfo>;
    const { rows, V } = rowsOf(logits);
    const program = elementProgram(
      util,
      'skd_cross_entropy_grad',
      ['dy', 'logits', 'targets', 'lse'],
      [rows, V],
      'getDy(row) * (exp(getLogits(row, col) - getLse(row)) - select(0.0, 1.0, col == i32(getTargets(row))))',
    );
    const grad = run(backend, program, [viewed(dy, [rows]), viewed(logits, [rows, V]), viewed(targets, [rows]), viewed(lse, [rows])]);
    return viewed(grad, logits.shape);
  });

  kernel('SkdForwardKl', ({ inputs, backend }) => {
    const logSumExp = (x: tf.TensorInfo, rows: number) => rowLse(run, backend, x, rows);
    const { logP, logits } = inputs as { logP: tf.TensorInfo; logits: tf.TensorInfo };
    const { rows, V, lead } = rowsOf(logits);
    const [p, x] = [viewed(logP, [rows, V]), viewed(logits, [rows, V])];
    const lse = logSumExp(x, rows);
    // sum_v P (log P - log Q), terms without teacher mass exactly 0, clamped at 0 (as the CPU kernels).
    const loss = run(
      backend,
      rowProgram(
        'skd_forward_kl',
        ['logits', 'logP', 'lse'],
        rows,
        `
      let rowLse = getLse(row);
      var k = 0.0;
      for (var col = tid; col < cols; col += ${ROW_BLOCK}) {
        let lp = getLogP(row, col);
        let pv = exp(lp);
        if (pv > 0.0) { k += pv * (lp - (getLogits(row, col) - rowLse)); }
      }
      ${reduce('k', 'sum', 'rowKl')}
      if (tid == 0) { setOutputAtIndex(row, max(rowKl, 0.0)); }`,
      ),
      [x, p, lse],
    );
    return [viewed(loss, lead), viewed(lse, lead)];
  });

  kernel('SkdForwardKlGrad', ({ inputs, backend }) => {
    const { dy, logP, logits, lse } = inputs as Record<'dy' | 'logP' | 'logits' | 'lse', tf.TensorInfo>;
    const { rows, V } = rowsOf(logits);
    const program = elementProgram(
      util,
      'skd_forward_kl_grad',
      ['dy', 'logP', 'logits', 'lse'],
      [rows, V],
      'getDy(row) * (exp(getLogits(row, col) - getLse(row)) - exp(getLogP(row, col)))',
    );
    const grad = run(backend, program, [viewed(dy, [rows]), viewed(logP, [rows, V]), viewed(logits, [rows, V]), viewed(lse, [rows])]);
    return viewed(grad, logits.shape);
  });

  kernel('SkdSampleTokens', ({ inputs, backend, attrs }) =>
    sampleTokens(run, backend, (inputs as { logits: tf.TensorInfo }).logits, attrs as unknown as Parameters<typeof sampleTokens>[3]),
  );

  kernel('SkdCachedAttention', ({ inputs, backend, attrs }) =>
    cachedAttention(
      run,
      backend,
      inputs as Record<'qkv' | 'keys' | 'values' | 'lengths' | 'mask', tf.TensorInfo>,
      attrs as unknown as { heads: number; scale: number },
    ),
  );
}
