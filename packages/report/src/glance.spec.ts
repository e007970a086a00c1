import { glanceLayout, glanceSvg, headlineCandidates, niceTicks } from './glance';
import type { GroupResult, SectionResult } from './report';

/** A group with a bootstrap value and interval for each metric given. */
function scored(group: string, metrics: Record<string, [number, number, number]>, seeds = 3): GroupResult {
  return {
    group,
    seeds,
    divergences: ['forward-kl'],
    metrics: Object.fromEntries(Object.entries(metrics).map(([m, [v]]) => [m, { mean: v, std: 0.01, values: Array(seeds).fill(v) }])),
    acceptance: null,
    bootstrap: {
      examples: 100,
      values: Object.fromEntries(Object.entries(metrics).map(([m, [v]]) => [m, v])),
      intervals: Object.fromEntries(Object.entries(metrics).map(([m, [, lo, hi]]) => [m, [lo, hi] as const])),
    },
  };
}

const section = (groups: GroupResult[]): SectionResult => ({ title: 'arithmetic', groups, paired: [] });

describe('the results at a glance', () => {
  const groups = [
    scored('method-sft__data-100', { exactMatch: [0.2, 0.15, 0.25], 'exactMatch[count]': [0.1, 0, 0.2], validationLoss: [1, 1, 1] }),
    scored('method-skd__data-100', { exactMatch: [0.3, 0.24, 0.36] }),
    scored('method-sft__data-1k', { exactMatch: [0.4, 0.33, 0.47] }),
    scored('method-skd__data-1k', { exactMatch: [0.5, 0.42, 0.58] }),
    scored('baseline-student-1k', { exactMatch: [0.1, 0.06, 0.14] }, 1),
    scored('baseline-teacher', { exactMatch: [0.7, 0.62, 0.78] }, 1),
    // The starting students, evaluated by skd eval --out (a reference in their own panel).
    { ...scored('method-initial__data-1k', { exactMatch: [0.25, 0.2, 0.3] }, 1), evaluation: true },
  ];

  it('leads with the task metric, not a breakdown, a count or a loss', () => {
    expect(headlineCandidates(section(groups))).toEqual(['exactMatch']);
    expect(headlineCandidates(section([scored('a', { chrf: [1, 0, 2], bleu: [1, 0, 2], rougeL: [1, 0, 2] })]))).toEqual(['chrf', 'rougeL', 'bleu']);
  });

  it("puts each method in its setting's panel with its interval, marks skd, and draws baselines as reference lines", () => {
    const layout = glanceLayout(section(groups));
    expect(layout?.metric).toBe('exactMatch');
    expect(layout?.panels.map((p) => [p.setting, p.rows.map((r) => `${r.label}${r.marked ? '*' : ''}`)])).toEqual([
      ['data 100', ['sft', 'skd*']],
      ['data 1k', ['sft', 'skd*']],
    ]);
    expect(layout?.panels[1]?.rows[1]).toMatchObject({ value: 0.5, interval: [0.42, 0.58], kind: 'bootstrap' });
    expect(layout?.references.map((r) => [r.label, r.value, r.setting])).toEqual([
      ['student-1k', 0.1, undefined],
      ['teacher', 0.7, undefined],
      ['initial', 0.25, 'data 1k'],
    ]);
    // --paired marks the compared value instead.
    expect(glanceLayout(section(groups), { highlight: { axis: 'method', value: 'sft' } })?.panels[0]?.rows.map((r) => r.marked)).toEqual([true, false]);
  });

  it('draws one mark and one interval per method and setting, and one line per reference, as standalone SVG', () => {
    const { svg, width, height } = glanceSvg(glanceLayout(section(groups)) as NonNullable<ReturnType<typeof glanceLayout>>, 'arithmetic: test exactMatch');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<circle class="mark"/g)).toHaveLength(4);
    expect(svg.match(/<line class="interval"/g)).toHaveLength(4);
    expect(svg.match(/<g class="reference"/g)).toHaveLength(3);
    expect(svg).toContain('initial (data 1k): 0.25');
    // The starting student's line spans its own panel only, the teacher's every panel.
    const span = (group: string) =>
      new RegExp(`data-group="${group}"[^]*?stroke-dasharray="5 3"/>`)
        .exec(svg)?.[0]
        .match(/y1="([\d.]+)" y2="([\d.]+)"/)
        ?.slice(1)
        .map(Number) as number[];
    expect((span('method-initial__data-1k')[1] as number) - (span('method-initial__data-1k')[0] as number)).toBeLessThan(
      (span('baseline-teacher')[1] as number) - (span('baseline-teacher')[0] as number),
    );
    expect(svg.match(/data-marked="true"/g)).toHaveLength(2);
    expect(svg).toContain('95% bootstrap intervals');
    expect(width).toBe(760);
    expect(height).toBeGreaterThan(150);
    // Marks sit at their values on one shared axis: 0.5 right of 0.3, the teacher's line right of both.
    const cx = (group: string) => Number(new RegExp(`data-group="${group}"[^]*?<circle class="mark" cx="([\\d.]+)"`).exec(svg)?.[1]);
    expect(cx('method-skd__data-1k')).toBeGreaterThan(cx('method-skd__data-100'));
  });

  it('gives a metric that never changes a readable axis, and single-seed runs without bootstrap scores no bar', () => {
    const flat = ['a', 'b'].map((m): GroupResult => ({
      group: `method-${m}`,
      seeds: 1,
      divergences: [],
      metrics: { passRate: { mean: 1, std: 0, values: [1] } },
      acceptance: null,
    }));
    const layout = glanceLayout(section(flat)) as NonNullable<ReturnType<typeof glanceLayout>>;
    const { svg } = glanceSvg(layout, 't');
    expect(svg).not.toContain('class="interval"');
    const ticks = [...svg.matchAll(/text-anchor="middle" font-size="11" fill="#444">([^<]+)</g)].map((m) => m[1]);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(ticks).toContain('1.00');
    expect(ticks.every((t) => (t as string).length <= 5)).toBe(true);
  });

  it('picks round ticks', () => {
    expect(niceTicks(0.03, 0.71)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
    expect(niceTicks(12, 38, 5)).toEqual([15, 20, 25, 30, 35]);
  });
});
