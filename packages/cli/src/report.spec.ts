import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findRuns, writeReport } from './report';

/** A finished run folder as experiment.ts writes it: summary.json and metrics.jsonl. */
function fakeRun(dir: string, group: string, seed: number, metric: number, acceptance?: readonly number[]): string {
  fs.mkdirSync(dir, { recursive: true });
  const steps = (acceptance ?? [0.5, 0.5, 0.5, 0.5]).map((a, i) => ({
    type: 'step', step: i + 1, totalSteps: 8, loss: 2 - i / 10, learningRate: 1e-3, gradNorm: 1, tokens: 10, tokensPerSecond: 100, seconds: 0.1,
    sampler: acceptance ? { acceptanceRate: a } : {},
  }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${[...steps, { type: 'eval', step: steps.length, split: 'test', metrics: { score: metric } }].map((e) => JSON.stringify(e)).join('\n')}\n`);
  const mean = acceptance ? acceptance.reduce((a, b) => a + b, 0) / acceptance.length : null;
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ run: path.basename(dir), group, seed, divergence: acceptance ? 'forward-kl' : 'cross-entropy', finalMetrics: { score: metric, count: 10 }, meanAcceptanceRate: mean }));
  return dir;
}

describe('writeReport', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-report-'));
  // SKD acceptance over 8 steps: quarters (1-2, 3-4, 5-6, 7-8) average 0.2, 0.4, 0.6, 0.8 for seed 1, each + 0.1 for seed 2.
  const rising = [0.1, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7, 0.9];
  fakeRun(path.join(root, 'task-a/method-skd__seed-1'), 'method-skd', 1, 0.5, rising);
  fakeRun(path.join(root, 'task-a/method-skd__seed-2'), 'method-skd', 2, 0.7, rising.map((a) => a + 0.1));
  fakeRun(path.join(root, 'task-a/method-sup__seed-1'), 'method-sup', 1, 0.1);
  fakeRun(path.join(root, 'task-b/method-sup__seed-1'), 'method-sup', 1, 0.3);

  it('gives mean ± std over seeds, and SKD acceptance per quarter of training', () => {
    const { markdown, groups, runs } = writeReport([{ title: 'task-a', runDirs: findRuns([path.join(root, 'task-a')]) }], path.join(root, 'out-a'), { command: 'skd report task-a' });
    expect([runs, groups]).toEqual([3, 2]);
    expect(markdown).toContain('Produced by `skd report task-a`.');
    // score 0.5 and 0.7: mean 0.6, sample std 0.1414; mean acceptance 0.5 and 0.6.
    expect(markdown).toContain('| method-skd | 2 | forward-kl | 0.600 ± 0.141 | 0.550 ± 0.071 |');
    expect(markdown).toContain('| method-sup | 1 | cross-entropy | 0.100 | - |');
    expect(markdown).toContain('| method-skd | 0.250 ± 0.071 | 0.450 ± 0.071 | 0.650 ± 0.071 | 0.850 ± 0.071 |');
    expect(markdown).not.toMatch(/\| method-sup \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \|$/m);
    expect(markdown).not.toContain('## task-a');
  });

  it('writes one section per path, each with its own table and charts', () => {
    const sections = ['task-a', 'task-b'].map((t) => ({ title: t, runDirs: findRuns([path.join(root, t)]) }));
    const { markdown, html } = writeReport(sections, path.join(root, 'out-ab'));
    expect(markdown.indexOf('## task-a')).toBeLessThan(markdown.indexOf('## task-b'));
    expect(markdown.split('## task-b')[1]).toContain('| method-sup | 1 | cross-entropy | 0.300 | - |');
    expect(html).toContain('<h2>task-b</h2>');
    expect(html).toContain('"id":"task-a: acceptance"');
    expect(html).not.toContain('"id":"task-b: acceptance"');
    expect(fs.readFileSync(path.join(root, 'out-ab/report.md'), 'utf8')).toBe(markdown);
  });

  it('fails with a hint when no finished run is found', () => {
    expect(() => writeReport([{ title: 'empty', runDirs: [] }], path.join(root, 'out-none'))).toThrow('no finished runs found');
  });
});
