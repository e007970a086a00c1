import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExactMatch, bootstrapScores, type BootstrapScores } from '@skd/evaluators';
import { writeFigures } from './figure-files';
import { findRuns, groupAxes, parsePairedSpec, writeReport } from './report';

/** A finished run folder as experiment.ts writes it: summary.json and metrics.jsonl. */
function fakeRun(dir: string, group: string, seed: number, metric: number, acceptance?: readonly number[]): string {
  fs.mkdirSync(dir, { recursive: true });
  const steps = (acceptance ?? [0.5, 0.5, 0.5, 0.5]).map((a, i) => ({
    type: 'step',
    step: i + 1,
    totalSteps: 8,
    loss: 2 - i / 10,
    learningRate: 1e-3,
    gradNorm: 1,
    tokens: 10,
    tokensPerSecond: 100,
    seconds: 0.1,
    sampler: acceptance ? { acceptanceRate: a } : {},
  }));
  fs.writeFileSync(
    path.join(dir, 'metrics.jsonl'),
    `${[...steps, { type: 'eval', step: steps.length, split: 'test', metrics: { score: metric } }].map((e) => JSON.stringify(e)).join('\n')}\n`,
  );
  const mean = acceptance ? acceptance.reduce((a, b) => a + b, 0) / acceptance.length : null;
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({
      run: path.basename(dir),
      group,
      seed,
      divergence: acceptance ? 'forward-kl' : 'cross-entropy',
      finalMetrics: { score: metric, count: 10 },
      meanAcceptanceRate: mean,
    }),
  );
  return dir;
}

/** Bootstrap scores of a system answering the first `right` of 100 arithmetic examples. */
function scores(right: number): Promise<BootstrapScores> {
  const predictions = Array.from({ length: 100 }, (_, i) => ({
    example: { id: `t${i}`, prompt: 'q', response: `#### ${i}` },
    text: i < right ? `#### ${i}` : '#### ?',
  }));
  return bootstrapScores(predictions, [new ExactMatch({ answerMarker: '####' })], { samples: 500 });
}

/** A finished run with bootstrap scores beside its summary, as the trainer writes them. */
async function scoredRun(dir: string, group: string, seed: number, right: number): Promise<void> {
  fakeRun(dir, group, seed, right / 100);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  fs.mkdirSync(path.join(dir, 'eval'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'eval/test-step-000008.bootstrap.json'), JSON.stringify(await scores(right)));
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({ ...summary, finalMetrics: { exactMatch: right / 100, count: 100 }, bootstrap: 'eval/test-step-000008.bootstrap.json' }),
  );
}

describe('report intervals and paired tests', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-paired-'));
  beforeAll(async () => {
    await scoredRun(path.join(root, 'method-skd__data-1k__seed-1'), 'method-skd__data-1k', 1, 60);
    await scoredRun(path.join(root, 'method-skd__data-1k__seed-2'), 'method-skd__data-1k', 2, 70);
    await scoredRun(path.join(root, 'method-sup__data-1k__seed-1'), 'method-sup__data-1k', 1, 20);
    await scoredRun(path.join(root, 'method-skd__data-100__seed-1'), 'method-skd__data-100', 1, 30);
    await scoredRun(path.join(root, 'method-sup__data-100__seed-1'), 'method-sup__data-100', 1, 30);
  });

  it('parses sweep group names and --paired values', () => {
    expect(groupAxes('method-supervised-kd__dataset.options.limit-100')).toEqual([
      ['method', 'supervised-kd'],
      ['dataset.options.limit', '100'],
    ]);
    expect(parsePairedSpec('method=skd')).toEqual({ axis: 'method', value: 'skd' });
    expect(() => parsePairedSpec('skd')).toThrow(/expected axis=value/);
  });

  it('gives each group its interval, seeds averaged, and tests the chosen method against the others on the same data only', () => {
    const { markdown, html } = writeReport([{ title: 'paired', runDirs: findRuns([root]) }], path.join(root, 'out'), {
      paired: { axis: 'method', value: 'skd' },
    });
    // Seeds 60% and 70% right: the group's value is 0.65, inside an interval of roughly ±0.09.
    const skd = /\| method-skd__data-1k \| 100 \| 0\.650 \[(0\.\d+), (0\.\d+)\] \|/.exec(markdown);
    expect(skd).not.toBeNull();
    expect(Number(skd?.[1])).toBeGreaterThan(0.54);
    expect(Number(skd?.[1])).toBeLessThan(0.6);
    expect(Number(skd?.[2])).toBeGreaterThan(0.7);
    expect(Number(skd?.[2])).toBeLessThan(0.76);
    // 0.65 against 0.20 on the same 100 examples: no resample comes near, p at its floor 1/(500+1).
    // 0.30 against 0.30 with the same answers: no difference at all.
    expect(markdown).toContain('| method-skd__data-1k | method-sup__data-1k | exactMatch | 0.450 | [');
    expect(markdown).toMatch(/\| method-skd__data-1k \| method-sup__data-1k \| exactMatch \| 0\.450 \| \[[\d.]+, [\d.]+\] \| 0\.002 \|/);
    expect(markdown).toContain('| method-skd__data-100 | method-sup__data-100 | exactMatch | 0.000 | [0.000, 0.000] | 1.000 |');
    expect(markdown).not.toContain('| method-skd__data-1k | method-sup__data-100 |');
    expect(html).toContain('Paired bootstrap tests of method skd');
  });

  it('leaves out intervals for runs written without bootstrap scores', () => {
    const { markdown } = writeReport(
      [{ title: 'plain', runDirs: findRuns([path.join(os.tmpdir(), 'nowhere'), path.join(root, '..', path.basename(root), 'method-skd__data-1k__seed-1')]) }],
      path.join(root, 'out-plain'),
    );
    expect(markdown).toContain('bootstrap intervals');
    const old = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-old-'));
    fakeRun(path.join(old, 'r'), 'g', 1, 0.5);
    expect(writeReport([{ title: 'old', runDirs: findRuns([old]) }], path.join(old, 'out')).markdown).not.toContain('bootstrap intervals');
  });
});

describe('writeReport', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-report-'));
  // SKD acceptance over 8 steps: quarters (1-2, 3-4, 5-6, 7-8) average 0.2, 0.4, 0.6, 0.8 for seed 1, each + 0.1 for seed 2.
  const rising = [0.1, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7, 0.9];
  fakeRun(path.join(root, 'task-a/method-skd__seed-1'), 'method-skd', 1, 0.5, rising);
  fakeRun(
    path.join(root, 'task-a/method-skd__seed-2'),
    'method-skd',
    2,
    0.7,
    rising.map((a) => a + 0.1),
  );
  fakeRun(path.join(root, 'task-a/method-sup__seed-1'), 'method-sup', 1, 0.1);
  fakeRun(path.join(root, 'task-b/method-sup__seed-1'), 'method-sup', 1, 0.3);

  it('gives mean ± std over seeds, and SKD acceptance per quarter of training', () => {
    const { markdown, groups, runs } = writeReport([{ title: 'task-a', runDirs: findRuns([path.join(root, 'task-a')]) }], path.join(root, 'out-a'), {
      command: 'skd report task-a',
    });
    expect([runs, groups]).toEqual([3, 2]);
    expect(markdown).toContain('Produced by `skd report task-a`.');
    // score 0.5 and 0.7: mean 0.6, sample std 0.1414; mean acceptance 0.5 and 0.6.
    // Every fake step takes 0.1 s; an evaluation-only group would show '-'.
    expect(markdown).toContain('| method-skd | 2 | forward-kl | 0.600 ± 0.141 | 0.550 ± 0.071 | 0.100 ± 0.000 |');
    expect(markdown).toContain('| method-sup | 1 | cross-entropy | 0.100 | - | 0.100 |');
    expect(markdown).toContain('| method-skd | 0.250 ± 0.071 | 0.450 ± 0.071 | 0.650 ± 0.071 | 0.850 ± 0.071 |');
    expect(markdown).not.toMatch(/\| method-sup \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \|$/m);
    expect(markdown).not.toContain('## task-a');
  });

  it('draws an ablation figure for a numeric sweep value with three or more settings, and writes it with --format', () => {
    const dir = path.join(root, 'ablation');
    [1, 5, 25].forEach((k, i) =>
      [1, 2].forEach((seed) =>
        fakeRun(
          path.join(dir, `k-${k}__seed-${seed}`),
          `k-${k}`,
          seed,
          0.3 + i / 10,
          rising.map((a) => a / (3 - i)),
        ),
      ),
    );
    const written = writeReport([{ title: 'ablation', runDirs: findRuns([dir]) }], path.join(root, 'out-ablation'));
    for (const g of written.sections[0]?.groups ?? []) expect(g.secondsPerStep?.mean).toBeCloseTo(0.1, 12);
    const figure = written.figures.find((f) => f.name === 'ablation-ablation-k');
    expect(figure?.svg).toContain('data-axis="k"');
    expect(figure?.svg.match(/class="mark"/g)).toHaveLength(9); // score, acceptance, seconds per step at 1, 5, 25
    expect(written.html).toContain('<figure class="ablation">');
    expect(writeFigures(written.figures, path.join(root, 'out-ablation/figures'), ['svg']).map((f) => path.basename(f))).toContain('ablation-ablation-k.svg');
    // Two values of an axis are a comparison, not an ablation: no figure.
    expect(writeReport([{ title: 'a', runDirs: findRuns([path.join(root, 'task-a')]) }], path.join(root, 'out-none')).html).not.toContain('class="ablation"');
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

  it("counts a resumed run's replayed steps once: acceptance per quarter as if it had never stopped", () => {
    const dir = path.join(root, 'resumed/method-skd__seed-1');
    fakeRun(dir, 'method-skd', 1, 0.5, rising);
    const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    // Killed after step 6, resumed from the checkpoint at step 4: steps 5-6 were logged (with other values), then again.
    const lost = [5, 6].map((step) => JSON.stringify({ ...JSON.parse(lines[step - 1] as string), sampler: { acceptanceRate: 0 } }));
    const resumed = JSON.stringify({ type: 'run-started', runId: 'x', totalSteps: 8, startStep: 4, backend: 'cpu', time: 0 });
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${[...lines.slice(0, 4), ...lost, resumed, ...lines.slice(4)].join('\n')}\n`);
    const { markdown } = writeReport([{ title: 'resumed', runDirs: [dir] }], path.join(root, 'out-resumed'));
    expect(markdown).toContain('| method-skd | 0.200 | 0.400 | 0.600 | 0.800 |');
  });

  it('leaves a broken run out with a warning naming it and the file, and reports the rest', () => {
    const broken = path.join(root, 'broken');
    fakeRun(path.join(broken, 'good'), 'method-sup', 1, 0.3);
    fakeRun(path.join(broken, 'torn'), 'method-sup', 2, 0.4);
    fs.writeFileSync(path.join(broken, 'torn', 'summary.json'), '{"run": "torn", "seed"');
    fakeRun(path.join(broken, 'garbled'), 'method-sup', 3, 0.4);
    fs.writeFileSync(path.join(broken, 'garbled', 'metrics.jsonl'), '{"type":"step"}\nnot json\n{"type":"eval"}\n');
    const warned: string[] = [];
    const { runs, skipped, markdown } = writeReport([{ title: 'broken', runDirs: findRuns([broken]) }], path.join(root, 'out-broken'), {
      onSkip: (dir) => warned.push(path.basename(dir)),
    });
    expect(runs).toBe(1);
    expect(warned.sort()).toEqual(['garbled', 'torn']);
    expect(skipped.find((s) => s.includes('torn'))).toMatch(/torn\/summary\.json: cannot read a run summary: /);
    expect(skipped.find((s) => s.includes('garbled'))).toMatch(/garbled\/metrics\.jsonl:2: not a JSON event/);
    expect(markdown).toContain('Left out (unreadable): 2 run(s)');
  });

  it('fails with a hint when no finished run is found', () => {
    expect(() => writeReport([{ title: 'empty', runDirs: [] }], path.join(root, 'out-none'))).toThrow('no finished runs found');
  });
});
