import { ablationLayouts, ablationSvg } from './ablation';
import type { GroupResult, SectionResult } from './report';

/** A group with a metric (value, interval), an acceptance rate and seconds per step. */
function group(name: string, metric: number, extra: { acceptance?: number; seconds?: number; evaluation?: boolean } = {}): GroupResult {
  const stat = (v: number) => ({ mean: v, std: 0, values: [v, v, v] });
  return {
    group: name,
    seeds: 3,
    divergences: ['forward-kl'],
    metrics: { passRate: stat(metric) },
    acceptance: extra.acceptance !== undefined ? stat(extra.acceptance) : null,
    ...(extra.seconds !== undefined ? { secondsPerStep: stat(extra.seconds) } : {}),
    ...(extra.evaluation ? { evaluation: true } : {}),
    bootstrap: { examples: 300, values: { passRate: metric }, intervals: { passRate: [metric - 0.05, metric + 0.05] } },
  };
}

const section = (groups: GroupResult[]): SectionResult => ({ title: 'instructions', groups, paired: [] });

describe('ablation figures', () => {
  it('find each numeric axis with three or more values, per setting of the other axes, in increasing order', () => {
    const groups = [
      group('k-10__data-1k', 0.35, { acceptance: 0.8, seconds: 0.2 }),
      group('k-1__data-1k', 0.3, { acceptance: 0.4, seconds: 0.4 }),
      group('k-5__data-1k', 0.34, { acceptance: 0.7, seconds: 0.25 }),
      group('k-1__data-100', 0.2),
      group('k-5__data-100', 0.22),
      group('method-initial__data-1k', 0.26, { evaluation: true }),
    ];
    const layouts = ablationLayouts(section(groups), 'passRate');
    expect(layouts).toHaveLength(1); // data=100 has two values of k only; data is not numeric; the evaluation is a reference
    const [k] = layouts;
    expect(k).toMatchObject({ axis: 'k', setting: 'data=1k', metric: 'passRate' });
    expect(k?.points.map((p) => [p.label, p.metric?.value, p.acceptance, p.secondsPerStep])).toEqual([
      ['1', 0.3, 0.4, 0.4],
      ['5', 0.34, 0.7, 0.25],
      ['10', 0.35, 0.8, 0.2],
    ]);
    expect(k?.points[0]?.metric?.interval).toEqual([0.25, 0.35]);
  });

  it('leave out axes with a value that is not a number, and sections without the metric', () => {
    const named = [group('temperature-0.2', 0.3), group('temperature-0.5', 0.31), group('temperature-hot', 0.2)];
    expect(ablationLayouts(section(named), 'passRate')).toEqual([]);
    const numbers = [group('temperature-0.2', 0.3), group('temperature-0.5', 0.31), group('temperature-1', 0.2)];
    expect(ablationLayouts(section(numbers), 'passRate').map((l) => l.points.map((p) => p.value))).toEqual([[0.2, 0.5, 1]]);
    expect(ablationLayouts(section(numbers), 'exactMatch')).toEqual([]);
    expect(ablationLayouts(section(numbers), undefined)).toEqual([]);
  });

  it('draw a panel for each measure the groups have, a mark per value', () => {
    const full = ablationLayouts(
      section([
        group('block-1', 0.3, { acceptance: 0.5, seconds: 0.3 }),
        group('block-3', 0.32, { acceptance: 0.5, seconds: 0.2 }),
        group('block-8', 0.31, { acceptance: 0.5, seconds: 0.15 }),
      ]),
      'passRate',
    );
    const { svg, width } = ablationSvg(full[0] as never, 'instructions: block');
    expect(svg).toContain('data-axis="block"');
    expect(svg.match(/class="panel"/g)).toHaveLength(3);
    expect(svg.match(/class="mark"/g)).toHaveLength(9);
    expect(svg.match(/class="interval"/g)).toHaveLength(3); // the metric's intervals only
    const bare = ablationLayouts(section([group('block-1', 0.3), group('block-3', 0.32), group('block-8', 0.31)]), 'passRate');
    const drawn = ablationSvg(bare[0] as never, 'instructions: block');
    expect(drawn.svg.match(/class="panel"/g)).toHaveLength(1);
    expect(drawn.width).toBeLessThan(width);
  });
});
