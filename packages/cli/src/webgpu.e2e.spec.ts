/**
 * `backend: "webgpu"` end to end: SKD distillation of the committed arithmetic models on WebGPU
 * (Mesa's software Vulkan here, a GPU where Vulkan reaches one) against the same run on skd's native
 * CPU kernels. tools/setup.sh installs what the backend needs, so this runs wherever the tests run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skd, stepEvents, tmp, type StepEvent } from './testing/cli';

const ARITHMETIC = path.resolve(__dirname, '../../../experiments/arithmetic');

function distill(dir: string, backend: string, steps: number): { steps: StepEvent[]; stderr: string } {
  const out = path.join(dir, backend);
  // The official run's models, sampler and data, shortened: 24 new tokens, batch 4, no evaluation.
  const settings = {
    backend,
    'training.steps': steps,
    'training.batchSize': 4,
    'training.warmupSteps': 5,
    'training.evalEvery': 0,
    'training.testLimit': 2,
    'training.checkpointEvery': 0,
    'training.maxNewTokens': 24,
    'sampler.options.maxNewTokens': 24,
  };
  const set = Object.entries(settings).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
  const result = skd(['distill', path.join(ARITHMETIC, 'distill.json'), '--out', out, ...set], ARITHMETIC, 900_000);
  if (result.status !== 0) throw new Error(`skd distill on ${backend} failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  return { steps: stepEvents(out), stderr: result.stderr };
}

describe('skd distill on webgpu', () => {
  it('takes 50 SKD steps with the losses, gradient norms and acceptance of the CPU run at every step', () => {
    const dir = tmp();
    const cpu = distill(dir, 'native', 50);
    const gpu = distill(dir, 'webgpu', 50);
    expect(gpu.stderr).toMatch(/^backend webgpu \(.+, (software|\w+)\)/m); // the adapter: "llvmpipe: Mesa 25.0.7 ..., mesa, software" here
    expect(gpu.steps).toHaveLength(50);
    gpu.steps.forEach((step, i) => {
      const reference = cpu.steps[i] as StepEvent;
      expect(step.step).toBe(reference.step);
      // The same tokens are sampled (same seed, logits equal to float32 rounding), so the same
      // sequences are trained on: losses and norms differ only by the kernels' summation order.
      expect(step.sampler.tokensGenerated).toBe(reference.sampler.tokensGenerated);
      expect(step.sampler.acceptanceRate).toBe(reference.sampler.acceptanceRate);
      expect(Math.abs(step.loss - reference.loss)).toBeLessThan(1e-3 * Math.max(1, Math.abs(reference.loss)));
      expect(Math.abs(step.gradNorm - reference.gradNorm)).toBeLessThan(1e-3 * Math.max(1, reference.gradNorm));
    });
    expect(new Set(cpu.steps.map((s) => s.loss)).size).toBeGreaterThan(40); // the run moves: not one repeated value
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
