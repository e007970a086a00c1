import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addonPathFor, chooseIsa, cpuFeatures, detectIsa, loadAddon } from './addon';

const flags = (list: string) => new Set(list.split(' '));
const AVX512 = flags('sse4_2 popcnt ssse3 avx2 fma bmi1 bmi2 f16c movbe avx512f avx512bw avx512cd avx512dq avx512vl');
const AVX2 = flags('sse4_2 popcnt ssse3 avx2 fma bmi1 bmi2 f16c movbe');

describe('picking the build for the CPU', () => {
  it('reads the model and flags from /proc/cpuinfo', () => {
    const cpu = cpuFeatures('processor\t: 0\nmodel name\t: AMD EPYC 9R45\nflags\t\t: fpu sse4_2 avx2\n');
    expect(cpu.model).toBe('AMD EPYC 9R45');
    expect([...cpu.flags]).toEqual(['fpu', 'sse4_2', 'avx2']);
  });

  it('detects the best level, and refuses a level the CPU lacks or an unknown one', () => {
    expect(detectIsa(AVX512)).toBe('avx512');
    expect(detectIsa(AVX2)).toBe('avx2');
    expect(detectIsa(flags('sse4_2 popcnt ssse3'))).toBe('baseline');
    expect(detectIsa(new Set())).toBeUndefined();
    expect(chooseIsa({}, AVX512)).toEqual({ level: 'avx512' });
    expect(chooseIsa({ SKD_ISA: 'avx2' }, AVX512)).toEqual({ level: 'avx2' });
    expect(chooseIsa({ SKD_ISA: 'avx512' }, AVX2).error).toBe('SKD_ISA=avx512: this CPU lacks avx512f, avx512bw, avx512cd, avx512dq, avx512vl; it runs avx2');
    expect(chooseIsa({ SKD_ISA: 'avx9' }, AVX2).error).toBe('SKD_ISA=avx9 is not one of avx512, avx2, baseline, auto');
  });
});

// The same computations through every level this CPU runs, each in its own process on the native
// backend: a two-block transformer step made of skd's fused kernels (linear layers, RMSNorm and
// LayerNorm, rotary-free causal attention with grouped heads, SwiGLU, products with 16-bit weights,
// log-softmax and forward KL), its loss and the gradients of every input, compared with the best
// level's. Vector width changes the order of sums, not the results beyond float rounding.
const levels = (['avx512', 'avx2', 'baseline'] as const).filter(
  (l) => chooseIsa({ SKD_ISA: l }, cpuFeatures().flags).level === l && fs.existsSync(addonPathFor(l)),
);
(loadAddon().isa && levels.length > 1 ? describe : describe.skip)(`the lower levels' builds on this CPU (${levels.join(', ')})`, () => {
  const script = `
    const tf = require('@tensorflow/tfjs-core');
    const { registerNativeBackend, registerNativeKernels } = require('./dist');
    const ops = require('@skd/ops');
    (async () => {
      registerNativeBackend();
      await tf.setBackend('native');
      const status = registerNativeKernels({ target: 'native' });
      const B = 3, T = 24, d = 64, H = 4, Hkv = 2, dh = 16, ff = 96, V = 97;
      const init = (shape, seed, scale = 0.2) => tf.randomNormal(shape, 0, scale, 'float32', seed);
      const x0 = init([B * T, d], 1, 1);
      const params = [init([d, (H + 2 * Hkv) * dh], 2), init([H * dh, d], 3), init([d], 4, 1), init([d, 2 * ff], 5), init([ff, d], 6), init([d], 7, 1), init([d], 8, 1), init([V, d], 9)];
      const teacher = tf.logSoftmax(init([B * T, V], 10, 2));
      // Frozen 16-bit weights stored (out, in) as a checkpoint holds them: one of each format.
      const halves = ['bfloat16', 'float16'].map((dtype, i) => ops.HalfMatrix.fromFloat32(init([d, d], 11 + i).dataSync(), [d, d], dtype));
      const loss = (x, wqkv, wo, g1, wup, wdown, g2, b2, head) => {
        let h = x;
        for (let layer = 0; layer < 2; layer++) {
          const a = ops.rmsNorm(h, g1, 1e-6);
          const att = ops.causalSelfAttention(ops.linear(a, wqkv), { batch: B, heads: H, kvHeads: Hkv });
          h = ops.linear(att, wo, undefined, h);
          const m = ops.layerNorm(h, g2, b2, 1e-5);
          h = ops.linear(ops.gatedActivation(ops.linear(m, wup), 'silu'), wdown, undefined, h);
          h = ops.linearHalf(h, halves[layer], { transposed: true, residual: h });
        }
        const logits = tf.matMul(h, head, false, true);
        return tf.mean(ops.forwardKlFromLogits(teacher, logits));
      };
      const { value, grads } = tf.valueAndGrads(loss)([x0, ...params]);
      const out = { kernels: status.summary, loss: (await value.data())[0], grads: [] };
      for (const g of grads) out.grads.push(Array.from((await g.data()).slice(0, 256)));
      console.log(JSON.stringify(out));
    })().catch((e) => { console.error(e.stack); process.exit(1); });`;
  const run = (level: string) => {
    const result = spawnSync(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '..'),
      encoding: 'utf8',
      env: { ...process.env, SKD_ISA: level },
    });
    if (result.status !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout.trim().split('\n').pop() as string) as { kernels: string; loss: number; grads: number[][] };
  };
  const best = run(levels[0] as string);

  it.each(levels.slice(1))('%s gives the best level’s loss and gradients within float rounding', (level) => {
    const other = run(level);
    expect(best.kernels).toContain(levels[0] === 'avx512' ? 'AVX-512' : 'AVX2');
    expect(other.kernels).toContain(level === 'avx2' ? 'AVX2' : 'SSE4.2');
    expect(Math.abs(other.loss - best.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(best.loss)));
    expect(best.grads).toHaveLength(9);
    const scale = Math.max(...best.grads.flat().map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    const diff = Math.max(...best.grads.flatMap((g, i) => g.map((v, j) => Math.abs(v - (other.grads[i]?.[j] as number)))));
    expect(diff).toBeLessThan(1e-4 * scale);
  });
});
