import { Rng, type Evaluator, type Prediction } from '@skd/core';
import { BleuChrf, RougeL } from './corpus-evaluators';
import { ExactMatch } from './exact-match';
import { averageScores, bootstrapScores, intervals, pairedBootstrap, percentileInterval } from './statistics';
import { corpusBleu, corpusChrf } from './text-metrics';

const exact = new ExactMatch({ answerMarker: '####' });

/** n predictions, example i answered right when `right(i)`; ids zero-padded so their order is i's. */
function answers(n: number, right: (i: number) => boolean, order: (ids: number[]) => number[] = (ids) => ids): Prediction[] {
  return order(Array.from({ length: n }, (_, i) => i)).map((i) => ({
    example: { id: `ex-${String(i).padStart(4, '0')}`, prompt: 'q', response: `#### ${i}` },
    text: right(i) ? `#### ${i}` : '#### wrong',
  }));
}

/** P(X <= k) for X ~ Binomial(n, p), summed in log space. */
function binomialCdf(k: number, n: number, p: number): number {
  let logC = 0;
  let total = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log((n - i + 1) / i);
    total += Math.exp(logC + i * Math.log(p) + (n - i) * Math.log(1 - p));
  }
  return total;
}

describe('per-example statistics', () => {
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'home', 'fast'];
  const sentence = (rng: Rng) => Array.from({ length: 3 + rng.int(8) }, () => words[rng.int(words.length)]).join(' ');

  it('give back corpus BLEU and chrF exactly when summed, and the metrics evaluate() reports', async () => {
    const rng = Rng.create(7);
    const predictions = Array.from({ length: 40 }, (_, i) => ({ example: { id: String(i), prompt: '', response: sentence(rng) }, text: sentence(rng) }));
    const hyps = predictions.map((p) => p.text);
    const refs = predictions.map((p) => p.example.response);
    const metrics = await new BleuChrf().evaluate(predictions);
    expect(metrics['bleu']).toBeCloseTo(corpusBleu(hyps, refs).score, 12);
    expect(metrics['chrf']).toBeCloseTo(corpusChrf(hyps, refs), 12);
    const scores = await bootstrapScores(predictions, [new BleuChrf()], { samples: 50 });
    expect(scores.values['bleu']).toBeCloseTo(metrics['bleu'] as number, 12);
  });

  it('resample corpus BLEU as a corpus metric: each resample scores what corpus BLEU gives its draw', async () => {
    const a = { example: { id: 'a', prompt: '', response: 'the cat sat on the mat today' }, text: 'the cat sat on a mat today' };
    const b = { example: { id: 'b', prompt: '', response: 'a dog ran home very fast now' }, text: 'the dog ran home fast now' };
    const corpus = (draw: (typeof a)[]) =>
      corpusBleu(
        draw.map((p) => p.text),
        draw.map((p) => p.example.response),
      ).score;
    // Two examples: a resample draws {a, a}, {a, b} or {b, b}, and the mixed draw is not the mean of the others.
    const possible = [corpus([a, a]), corpus([a, b]), corpus([b, b])];
    expect(Math.abs((possible[0] as number) + (possible[2] as number) - 2 * (possible[1] as number))).toBeGreaterThan(1);
    const scores = await bootstrapScores([a, b], [new BleuChrf()], { samples: 200 });
    const seen = new Set(scores.resamples['bleu']?.map((v) => possible.findIndex((x) => Math.abs(x - v) < 1e-9)));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });
});

describe('bootstrap intervals', () => {
  it('match the closed form for a share: Binomial(n, p)/n quantiles', async () => {
    const n = 300;
    const rng = Rng.create(3);
    const predictions = answers(n, () => rng.random() < 0.6);
    const hits = predictions.filter((p) => p.text !== '#### wrong').length;
    const scores = await bootstrapScores(predictions, [exact], { samples: 2000 });
    const [low, high] = intervals(scores)['exactMatch'] as [number, number];
    const p = hits / n;
    let k = 0;
    while (binomialCdf(k, n, p) < 0.025) k += 1;
    let m = k;
    while (binomialCdf(m, n, p) < 0.975) m += 1;
    expect(low).toBeCloseTo(k / n, 1);
    expect(Math.abs(low - k / n)).toBeLessThan(0.012);
    expect(Math.abs(high - m / n)).toBeLessThan(0.012);
  });

  it('resample the same examples for every run, whatever the order predictions come in', async () => {
    const a = await bootstrapScores(
      answers(50, (i) => i % 3 === 0),
      [exact],
      { samples: 100 },
    );
    const b = await bootstrapScores(
      answers(
        50,
        (i) => i % 3 === 0,
        (ids) => [...ids].reverse(),
      ),
      [exact],
      { samples: 100 },
    );
    expect(b).toEqual(a);
    const other = await bootstrapScores(
      answers(49, () => true),
      [exact],
      { samples: 100 },
    );
    expect(() => pairedBootstrap(a, other)).toThrow(/not comparable/);
  });

  it('average a group of runs value by value and resample by resample', async () => {
    const a = await bootstrapScores(
      answers(20, (i) => i < 10),
      [exact],
      { samples: 30 },
    );
    const b = await bootstrapScores(
      answers(20, (i) => i < 4),
      [exact],
      { samples: 30 },
    );
    const mean = averageScores([a, b]);
    expect(mean.values['exactMatch']).toBeCloseTo(0.35, 12);
    mean.resamples['exactMatch']?.forEach((v, i) =>
      expect(v).toBeCloseTo(((a.resamples['exactMatch']?.[i] as number) + (b.resamples['exactMatch']?.[i] as number)) / 2, 12),
    );
  });

  it('skip evaluators without statistics and refuse an empty set', async () => {
    const opaque: Evaluator = { name: 'opaque', evaluate: async () => ({ opaque: 1 }) };
    const scores = await bootstrapScores(
      answers(5, () => true),
      [opaque, new RougeL('rouge-score')],
      { samples: 10 },
    );
    expect(Object.keys(scores.values)).toEqual(['rougeL']);
    await expect(bootstrapScores([], [exact])).rejects.toThrow(/no predictions/);
  });

  it('take the nearest-rank percentiles', () => {
    expect(percentileInterval(Array.from({ length: 1000 }, (_, i) => 999 - i))).toEqual([25, 974]);
  });
});

describe('paired bootstrap test', () => {
  it('finds no difference between a system and itself, and a certain one when a system wins everywhere it differs', async () => {
    const base = await bootstrapScores(
      answers(200, (i) => i % 2 === 0),
      [exact],
    );
    expect(pairedBootstrap(base, base)['exactMatch']).toEqual({ delta: 0, interval: [0, 0], p: 1 });
    const better = await bootstrapScores(
      answers(200, (i) => i % 2 === 0 || i % 5 === 0),
      [exact],
    );
    const result = pairedBootstrap(better, base)['exactMatch'];
    expect(result?.delta).toBeCloseTo(0.1, 12);
    expect(result?.p).toBeCloseTo(1 / 1001, 12);
    expect(result?.interval[0]).toBeGreaterThan(0);
  });

  it('rejects at about its level when two systems are equally good (p-values under the null)', async () => {
    const rng = Rng.create(11);
    let rejected = 0;
    const trials = 40;
    for (let t = 0; t < trials; t++) {
      const a = await bootstrapScores(
        answers(120, () => rng.random() < 0.5),
        [exact],
        { samples: 300 },
      );
      const b = await bootstrapScores(
        answers(120, () => rng.random() < 0.5),
        [exact],
        { samples: 300 },
      );
      if ((pairedBootstrap(a, b)['exactMatch']?.p as number) < 0.05) rejected += 1;
    }
    // Binomial(40, 0.05): mean 2, P(X > 8) < 1e-3.
    expect(rejected).toBeLessThanOrEqual(8);
  });

  it('rejects when the difference is real', async () => {
    const rng = Rng.create(12);
    const a = await bootstrapScores(
      answers(300, () => rng.random() < 0.7),
      [exact],
    );
    const b = await bootstrapScores(
      answers(300, () => rng.random() < 0.4),
      [exact],
    );
    expect(pairedBootstrap(a, b)['exactMatch']?.p).toBeLessThan(0.01);
  });
});
