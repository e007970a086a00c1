import { Rng } from './rng';

describe('Rng', () => {
  it('repeats the same stream for the same seed and differs across seeds', () => {
    const a = Rng.create(42);
    const b = Rng.create(42);
    const c = Rng.create(43);
    const xs = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('continues exactly from a saved state', () => {
    const a = Rng.create(7).fork('sampler');
    for (let i = 0; i < 100; i++) a.random();
    const saved = JSON.parse(JSON.stringify(a.getState()));
    const expected = Array.from({ length: 5 }, () => a.random());
    const b = Rng.fromState(saved);
    expect(Array.from({ length: 5 }, () => b.random())).toEqual(expected);
  });

  it('forks by label only, whatever the parent has drawn', () => {
    const a = Rng.create(1);
    const b = Rng.create(1);
    for (let i = 0; i < 10; i++) b.random();
    expect(a.fork('x').nextUint32()).toBe(b.fork('x').nextUint32());
    expect(a.fork('x').nextUint32()).not.toBe(a.fork('y').nextUint32());
    expect(a.fork('x').fork('y').nextUint32()).not.toBe(a.fork('y').fork('x').nextUint32());
  });

  it('draws uniform floats in [0, 1) (chi-square over 20 bins, 1e5 draws, p > 0.001)', () => {
    const rng = Rng.create(3);
    const bins = new Array(20).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const u = rng.random();
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 20)]++;
    }
    const expected = n / 20;
    const chi2 = bins.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(43.8); // chi-square(19) critical value at p = 0.001
  });

  it('draws categorical samples with the given probabilities and never a zero-weight index', () => {
    const rng = Rng.create(5);
    const weights = [0.5, 0, 0.25, 0.25];
    const counts = [0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      const k = rng.categorical(weights);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    expect(counts[1]).toBe(0);
    const chi2 = [0, 2, 3].reduce((s, i) => s + ((counts[i] as number) - (weights[i] as number) * n) ** 2 / ((weights[i] as number) * n), 0);
    expect(chi2).toBeLessThan(13.8); // chi-square(2) at p = 0.001
  });

  it('draws unbiased integers and shuffles into every permutation', () => {
    const rng = Rng.create(9);
    const counts = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const key = rng.shuffle([0, 1, 2]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(150);
    for (let i = 0; i < 1000; i++) expect(rng.int(3)).toBeLessThan(3);
  });

  it('draws standard normals (mean 0, variance 1 within 4 standard errors)', () => {
    const rng = Rng.create(11);
    const n = 50_000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(sq / n - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
  });

  it('rejects bad seeds, bounds and weights with the offending value', () => {
    expect(() => Rng.create(-1)).toThrow('seed must be a non-negative integer, got -1');
    expect(() => Rng.create(1.5)).toThrow('got 1.5');
    expect(() => Rng.create(0).int(0)).toThrow('got 0');
    expect(() => Rng.create(0).categorical([0, 0])).toThrow('sum to 0');
    expect(() => Rng.create(0).categorical([1, Number.NaN])).toThrow('got NaN at index 1');
    expect(() => Rng.create(0).setState({ seed: 0, path: [], s: [1, 2, 3, -1] })).toThrow('four uint32 words');
  });
});
