import { expandGrid, sweepSchema } from './sweep';

describe('expandGrid', () => {
  it('runs every combination of plain keys, naming component objects by kind and leaving the seed out of the group', () => {
    const runs = expandGrid({ sampler: [{ kind: 'supervised' }, { kind: 'skd', options: { topK: 5 } }], seed: [1, 2] });
    expect(runs.map((r) => r.name)).toEqual(['sampler-supervised__seed-1', 'sampler-supervised__seed-2', 'sampler-skd__seed-1', 'sampler-skd__seed-2']);
    expect(runs[2]).toEqual({ name: 'sampler-skd__seed-1', group: 'sampler-skd', sets: ['sampler={"kind":"skd","options":{"topK":5}}', 'seed=1'] });
  });

  it('sets the paths of an "@axis" value together under its name', () => {
    const grid = {
      '@method': [
        { name: 'supervised-ft', set: { sampler: { kind: 'supervised' }, divergence: { kind: 'cross-entropy' } } },
        { name: 'gkd', set: { sampler: { kind: 'mixed', options: { lambda: 0.5 } }, divergence: { kind: 'jsd' } } },
      ],
      '@data': [{ name: '100', set: { 'dataset.options.limit': 100, 'student.options.path': 'models/student-100' } }],
      seed: [7],
    };
    const runs = expandGrid(grid);
    expect(runs.map((r) => [r.name, r.group])).toEqual([
      ['method-supervised-ft__data-100__seed-7', 'method-supervised-ft__data-100'],
      ['method-gkd__data-100__seed-7', 'method-gkd__data-100'],
    ]);
    expect(runs[1]?.sets).toEqual([
      'sampler={"kind":"mixed","options":{"lambda":0.5}}',
      'divergence={"kind":"jsd"}',
      'dataset.options.limit=100',
      'student.options.path=models/student-100',
      'seed=7',
    ]);
  });

  it('rejects an "@axis" value without a name or set, with its place in the grid', () => {
    const parsed = sweepSchema.safeParse({ base: 'b.json', out: 'o', grid: { '@method': [{ name: 'ok', set: {} }, { set: { seed: 1 } }, { name: 'a b', set: {} }] } });
    expect(parsed.success).toBe(false);
    const issues = parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues).toEqual(expect.arrayContaining([expect.stringMatching(/^grid\.@method\.1\.name: /), 'grid.@method.2.name: letters, digits, ".", "_" or "-"']));
  });

  it('refuses two grid points that would share a run folder, naming both, before anything runs', () => {
    const grid = { sampler: [{ kind: 'skd', options: { topK: 5 } }, { kind: 'skd', options: { topK: 1 } }] };
    expect(() => expandGrid(grid)).toThrow(
      'grid points { sampler: {"kind":"skd","options":{"topK":5}} } and { sampler: {"kind":"skd","options":{"topK":1}} } would both be the run "sampler-skd"',
    );
    expect(() => expandGrid(grid)).toThrow('"@axis" key');
  });

  it('refuses grid keys and "@axis" paths through __proto__, constructor or prototype', () => {
    const parsed = sweepSchema.safeParse({
      base: 'b.json',
      out: 'o',
      grid: { '__proto__.evil': [1], '@m': [{ name: 'x', set: { 'constructor.prototype.evil': 1 } }] },
    });
    expect(parsed.success).toBe(false);
    const issues = parsed.error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(issues).toEqual(['grid.__proto__.evil', 'grid.@m.0.set.constructor.prototype.evil']);
    expect(Object.prototype).not.toHaveProperty('evil');
  });
});
