import type { RunEvent } from '@skd/core';
import { buildCharts, chartScripts, inlineJson, smooth } from './charts';

const step = (n: number, loss: number, acceptance?: number): RunEvent => ({
  type: 'step',
  step: n,
  totalSteps: 4,
  loss,
  learningRate: 1e-3,
  gradNorm: 1,
  tokens: 8,
  tokensPerSecond: 80,
  seconds: 0.1,
  sampler: acceptance === undefined ? {} : { acceptanceRate: acceptance },
});
const evaluation = (n: number, split: string, exactMatch: number, interval?: [number, number]): RunEvent => ({
  type: 'eval',
  step: n,
  split,
  metrics: { exactMatch, count: 50 },
  ...(interval ? { intervals: { exactMatch: interval } } : {}),
});

describe('chart data', () => {
  const seed1 = [step(1, 2, 0.5), step(2, 1), evaluation(2, 'eval', 0.2, [0.1, 0.3]), evaluation(2, 'test', 0.3, [0.2, 0.4])];
  const seed2 = [step(1, 4, 0.7), step(2, 3), evaluation(2, 'eval', 0.4, [0.3, 0.5]), evaluation(2, 'test', 0.5, [0.4, 0.6])];
  const charts = buildCharts([
    { series: 'skd', events: seed1 },
    { series: 'skd', events: seed2 },
    { series: 'initial', events: [evaluation(0, 'test', 0.1)] },
  ]);
  const chart = (id: string) => charts.find((c) => c.id === id);

  it("averages a group's seeds per step with their range as a band, and averages the bounds of their intervals", () => {
    expect(chart('loss')?.rows).toEqual([
      { series: 'skd', step: 1, value: 3, low: 2, high: 4 },
      { series: 'skd', step: 2, value: 2, low: 1, high: 3 },
    ]);
    // One run: no band.
    expect(buildCharts([{ series: 'one', events: seed1 }]).find((c) => c.id === 'loss')?.rows).toEqual([
      { series: 'one', step: 1, value: 2 },
      { series: 'one', step: 2, value: 1 },
    ]);
    expect(chart('eval-exactMatch')?.rows).toEqual([
      { series: 'skd', step: 2, value: expect.closeTo(0.3, 12), low: expect.closeTo(0.2, 12), high: expect.closeTo(0.4, 12), split: 'eval' },
      { series: 'skd', step: 2, value: expect.closeTo(0.4, 12), low: expect.closeTo(0.3, 12), high: expect.closeTo(0.5, 12), split: 'test' },
      { series: 'initial', step: 0, value: 0.1, split: 'test' }, // a single point, no interval: drawn as a point
    ]);
  });

  it('keeps only steps that report a statistic, and leaves out charts with no data and the example count', () => {
    expect(chart('acceptance')?.rows).toEqual([{ series: 'skd', step: 1, value: expect.closeTo(0.6, 12), low: 0.5, high: 0.7 }]);
    expect(charts.map((c) => c.id)).toEqual(['loss', 'acceptance', 'eval-exactMatch']);
    expect(buildCharts([{ series: 'x', events: [step(1, 1)] }], 'task: ').map((c) => c.title)).toEqual(['task: training loss']);
  });

  it('smooths with a debiased moving average: a constant stays constant, a step change is followed gradually', () => {
    const rows = (values: number[]) => values.map((value, i) => ({ series: 's', step: i + 1, value }));
    expect(smooth(rows(Array(100).fill(2))).every((r) => Math.abs(r.value - 2) < 1e-12)).toBe(true);
    // 100 points: weight 1 - 20/100 = 0.8. k points after a jump from 0 to 1 at point 51 the average is
    // (1 - 0.8^k) divided by the debiasing norm 1 - 0.8^(50 + k).
    const jumped = smooth(rows([...Array(50).fill(0), ...Array(50).fill(1)]));
    expect(jumped[50]?.value).toBeCloseTo(0.2 / (1 - 0.8 ** 51), 12);
    expect(jumped[51]?.value).toBeCloseTo((1 - 0.8 ** 2) / (1 - 0.8 ** 52), 12);
    // Short curves are left as they are (20 points or fewer: weight 0).
    expect(smooth(rows([3, 1, 2])).map((r) => r.value)).toEqual([3, 1, 2]);
  });

  it('inlines d3, Observable Plot and the renderer, and data that cannot close the script element', () => {
    const scripts = chartScripts();
    expect(scripts).toContain('Observable, Inc.');
    expect(scripts).toContain('window.skdCharts');
    expect(scripts.match(/<\/script>/g)).toHaveLength(3);
    expect(inlineJson({ series: '</script><b>' })).not.toContain('</script>');
  });
});
