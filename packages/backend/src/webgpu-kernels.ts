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
function rowLse(
  run: (backend: unknown, program: WebGpuProgram, inputs: tf.TensorInfo[]) => tf.TensorInfo,
  backend: unknown,
  x: tf.TensorInfo,
  rows: number,
): tf.TensorInfo {
  return run(backend, rowProgram('skd_row_lse', ['logits'], rows, `${rowLogSumExp}\n      if (tid == 0) { setOutputAtIndex(row, lse); }`), [x]);
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}

/** Registers the fused loss kernels for the `webgpu` backend (once; later calls change nothing). */
export function registerWebGpuKernels(util: WebGpuUtil): void {
  if (tf.getKernel('SkdCrossEntropy', 'webgpu')) return;
  const run = (backend: unknown, program: WebGpuProgram, inputs: tf.TensorInfo[]) => (backend as ProgramRunner).runWebGPUProgram(program, inputs, 'float32');
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
}
