import { spawnSync } from 'node:child_process';
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

// The same computations through every level this CPU runs: a training step of a small GPT and a
// Llama-family decoder (forward, loss, every gradient) and a sampled generation, each in its own
// process, compared with the best level's. Vector width changes the order of sums, not the results
// beyond float rounding.
const levels = (['avx512', 'avx2', 'baseline'] as const).filter(
  (l) => chooseIsa({ SKD_ISA: l }, cpuFeatures().flags).level === l && require('node:fs').existsSync(addonPathFor(l)),
);
(loadAddon().isa && levels.length > 1 ? describe : describe.skip)(`the lower levels' builds on this CPU (${levels.join(', ')})`, () => {
  const script = `
    const tf = require('@tensorflow/tfjs-core');
    const { selectBackend } = require('@skd/backend');
    const { GptModel, DecoderModel, gptConfig, decoderConfig } = require('@skd/models');
    (async () => {
      const choice = await selectBackend({ backend: 'native' });
      const out = { backend: choice.native?.summary };
      for (const [name, model] of [
        ['gpt', new GptModel(gptConfig({ vocabSize: 67, layers: 2, dModel: 48, heads: 4, contextLength: 64 }), { seed: 3 })],
        ['llama', new DecoderModel(decoderConfig({ vocabSize: 67, layers: 2, dModel: 48, heads: 4, kvHeads: 2, contextLength: 64 }), { seed: 4 })],
      ]) {
        const tokens = tf.tensor2d(Array.from({ length: 4 * 40 }, (_, i) => (i * 7919) % 67), [4, 40], 'int32');
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.logSoftmax(model.logits(tokens))), model.trainableVariables);
        out[name] = { loss: (await value.data())[0], grads: await Promise.all(Object.values(grads).map(async (g) => Array.from((await g.data()).slice(0, 64)))) };
      }
      console.log(JSON.stringify(out));
    })();`;
  const run = (level: string) => {
    const result = spawnSync(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '..'),
      encoding: 'utf8',
      env: { ...process.env, SKD_ISA: level },
    });
    if (result.status !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout.trim().split('\n').pop() as string) as Record<string, { loss: number; grads: number[][] }> & { backend: string };
  };
  const best = run(levels[0] as string);

  it.each(levels.slice(1))('%s gives the best level’s losses and gradients within float rounding', (level) => {
    const other = run(level);
    expect(other.backend).toContain(level === 'avx2' ? 'AVX2' : 'SSE4.2');
    expect(best.backend).toContain(levels[0] === 'avx512' ? 'AVX-512' : 'AVX2');
    for (const name of ['gpt', 'llama'] as const) {
      const a = best[name] as { loss: number; grads: number[][] };
      const b = other[name] as { loss: number; grads: number[][] };
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
      const diff = Math.max(...a.grads.flatMap((g, i) => g.map((v, j) => Math.abs(v - (b.grads[i]?.[j] as number)))));
      const scale = Math.max(...a.grads.flat().map(Math.abs));
      expect(diff).toBeLessThan(1e-4 * scale + 1e-7);
    }
  });
});
