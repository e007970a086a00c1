import { expandGrid, selectRuns, sweepSchema } from './sweep';

describe('expandGrid', () => {
  it('runs every combination of plain keys, naming component objects by kind and leaving the seed out of the group', () => {
    const runs = expandGrid({ sampler: [{ kind: 'supervised' }, { kind: 'skd', options: { topK: 5 } }], seed: [1, 2] });
    expect(runs.map((r) => r.name)).toEqual(['sampler-supervised__seed-1', 'sampler-supervised__seed-2', 'sampler-skd__seed-1', 'sampler-skd__seed-2']);
    expect(runs[2]).toEqual({
      name: 'sampler-skd__seed-1',
      group: 'sampler-skd',
      sets: ['sampler={"kind":"skd","options":{"topK":5}}', 'seed=1'],
      labels: { sampler: 'skd', seed: '1' },
    });
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

  it('takes `set` as an object or as a list of "path=value" strings, at the top and in an "@axis" value alike', () => {
    const asObject = sweepSchema.parse({
      base: 'b.json',
      out: 'o',
      set: { 'training.steps': 5, sampler: { kind: 'skd' } },
      grid: { '@m': [{ name: 'a', set: { 'training.batchSize': 2, divergence: { kind: 'jsd' } } }] },
    });
    const asList = sweepSchema.parse({
      base: 'b.json',
      out: 'o',
      set: ['training.steps=5', 'sampler={"kind":"skd"}'],
      grid: { '@m': [{ name: 'a', set: ['training.batchSize=2', 'divergence={"kind":"jsd"}'] }] },
    });
    expect(asObject.set).toEqual(['training.steps=5', 'sampler={"kind":"skd"}']);
    expect(asList.set).toEqual(asObject.set);
    expect(expandGrid(asList.grid)).toEqual(expandGrid(asObject.grid));
    expect(expandGrid(asList.grid)[0]?.sets).toEqual(['training.batchSize=2', 'divergence={"kind":"jsd"}']);
    // Either form is checked: a string without "=", and a path through __proto__.
    const noEquals = sweepSchema.safeParse({ base: 'b.json', out: 'o', set: ['training.steps'], grid: { seed: [1] } });
    expect(noEquals.error?.issues.map((i) => i.path[0])).toEqual(['set']);
    const proto = sweepSchema.safeParse({ base: 'b.json', out: 'o', grid: { '@m': [{ name: 'a', set: ['__proto__.x=1'] }] } });
    expect(proto.error?.issues.map((i) => i.path.join('.'))).toEqual(['grid.@m.0.set.0']);
  });

  it('rejects an "@axis" value without a name or set, with its place in the grid', () => {
    const parsed = sweepSchema.safeParse({
      base: 'b.json',
      out: 'o',
      grid: { '@method': [{ name: 'ok', set: {} }, { set: { seed: 1 } }, { name: 'a b', set: {} }] },
    });
    expect(parsed.success).toBe(false);
    const issues = parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^grid\.@method\.1\.name: /), 'grid.@method.2.name: letters, digits, ".", "_" or "-"']),
    );
  });

  it('refuses two grid points that would share a run folder, naming both, before anything runs', () => {
    const grid = {
      sampler: [
        { kind: 'skd', options: { topK: 5 } },
        { kind: 'skd', options: { topK: 1 } },
      ],
    };
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

describe('selectRuns (skd sweep --only)', () => {
  const runs = expandGrid({
    '@method': ['supervised-ft', 'on-policy', 'skd'].map((name) => ({ name, set: { 'training.lr': 1e-3 } })),
    '@data': ['1k', '100'].map((name) => ({ name, set: {} })),
    seed: [1, 2, 3],
  });

  it('keeps the runs whose every filtered axis has one of the listed values, in grid order', () => {
    expect(selectRuns(runs, ['method=skd,on-policy', 'data=100', 'seed=1']).map((r) => r.name)).toEqual([
      'method-on-policy__data-100__seed-1',
      'method-skd__data-100__seed-1',
    ]);
    expect(selectRuns(runs, ['@method=skd'])).toHaveLength(6);
    expect(selectRuns(runs, [])).toHaveLength(18);
    // Two filters on one axis keep what both allow.
    expect(selectRuns(runs, ['method=skd,on-policy', 'method=skd']).map((r) => r.labels.method)).toEqual(Array(6).fill('skd'));
  });

  it('names the valid axes and values when a filter matches neither, instead of selecting nothing', () => {
    expect(() => selectRuns(runs, ['methods=skd'])).toThrow('the sweep has no axis "methods"');
    expect(() => selectRuns(runs, ['methods=skd'])).toThrow(expect.objectContaining({ hint: 'axes of this sweep: method, data, seed' }));
    expect(() => selectRuns(runs, ['method=skd,sdk'])).toThrow('axis "method" has no value "sdk"');
    expect(() => selectRuns(runs, ['method=sdk'])).toThrow(expect.objectContaining({ hint: 'its values: supervised-ft, on-policy, skd' }));
    expect(() => selectRuns(runs, ['skd'])).toThrow('expected axis=value[,value...]');
  });
});
