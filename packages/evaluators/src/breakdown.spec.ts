import { FormatError, Rng, type SkdError, type Evaluator, type Prediction } from '@skd/core';
import { FieldBreakdown, categoryMetric } from './breakdown';
import { BleuChrf } from './corpus-evaluators';
import { ExactMatch } from './exact-match';
import { bootstrapScores, pairedBootstrap } from './statistics';

const exact = new ExactMatch({ answerMarker: '####' });
const kinds = ['add', 'sub', 'mul'];

/** Example i is of kind i % 3 and answered right when `right(i)`. */
function answers(n: number, right: (i: number) => boolean): Prediction[] {
  return Array.from({ length: n }, (_, i) => ({
    example: { id: `ex-${String(i).padStart(4, '0')}`, prompt: 'q', response: `#### ${i}`, fields: { kind: kinds[i % 3] } },
    text: right(i) ? `#### ${i}` : '#### wrong',
  }));
}

describe('FieldBreakdown', () => {
  it('reports the whole metric unchanged and each category as the evaluator scores that category alone', async () => {
    const predictions = answers(30, (i) => i % 3 === 0 || i < 5); // add: all 10 right; sub: 2 (1, 4); mul: 1 (2)
    const metrics = await FieldBreakdown.of(exact, 'kind').evaluate(predictions);
    expect(metrics).toEqual({
      exactMatch: 13 / 30,
      count: 30,
      [categoryMetric('exactMatch', 'add')]: 1,
      [categoryMetric('exactMatch', 'mul')]: 1 / 10,
      [categoryMetric('exactMatch', 'sub')]: 2 / 10,
    });
  });

  it("scores corpus metrics from the category's summed statistics, as on the subset alone", async () => {
    const rng = Rng.create(3);
    const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran'];
    const sentence = () => Array.from({ length: 3 + rng.int(6) }, () => words[rng.int(words.length)]).join(' ');
    const predictions = Array.from({ length: 24 }, (_, i) => ({
      example: { id: String(i), prompt: '', response: sentence(), fields: { kind: kinds[i % 3] } },
      text: sentence(),
    }));
    const metrics = await FieldBreakdown.of(new BleuChrf(), 'kind').evaluate(predictions);
    for (const kind of kinds) {
      const alone = await new BleuChrf().evaluate(predictions.filter((p) => p.example.fields.kind === kind));
      expect(metrics[categoryMetric('bleu', kind)]).toBeCloseTo(alone['bleu'] as number, 12);
      expect(metrics[categoryMetric('chrf', kind)]).toBeCloseTo(alone['chrf'] as number, 12);
    }
    expect(metrics['bleu']).toBeCloseTo((await new BleuChrf().evaluate(predictions))['bleu'] as number, 12);
  });

  it('gives every category its own interval and paired test: systems that differ in one category tie exactly in the others', async () => {
    const n = 90;
    const baseline = answers(n, (i) => i % 2 === 0);
    const system = answers(n, (i) => i % 2 === 0 || i % 3 === 1); // better on "sub" only
    const breakdown = FieldBreakdown.of(exact, 'kind');
    const [a, b] = await Promise.all([bootstrapScores(system, [breakdown], { samples: 400 }), bootstrapScores(baseline, [breakdown], { samples: 400 })]);
    const paired = pairedBootstrap(a, b);
    const sub = paired[categoryMetric('exactMatch', 'sub')];
    expect(sub?.delta).toBeCloseTo(0.5, 12); // 15 more of the 30 "sub" examples right
    expect(sub?.p).toBeLessThan(0.01);
    for (const kind of ['add', 'mul']) expect(paired[categoryMetric('exactMatch', kind)]).toEqual({ delta: 0, interval: [0, 0], p: 1 });
    const add = a.resamples[categoryMetric('exactMatch', 'add')] as number[]; // half right: it varies over resamples
    expect(Math.min(...add)).toBeLessThan(0.5);
    expect(Math.max(...add)).toBeGreaterThan(0.5);
  });

  it('names the example whose field is missing, and how to keep the field', async () => {
    const predictions = answers(4, () => true);
    const { fields: _dropped, ...bare } = predictions[2]?.example as Prediction['example'];
    predictions[2] = { example: bare, text: 'x' };
    const error = await FieldBreakdown.of(exact, 'kind')
      .evaluate(predictions)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect(String((error as Error).message)).toContain('ex-0002: no "kind" to break the metrics down by');
    expect((error as SkdError).hint).toContain('fields.extra');
  });

  it('refuses an evaluator without per-example statistics', () => {
    const plain: Evaluator = { name: 'judge', evaluate: async () => ({ score: 1 }) };
    expect(() => FieldBreakdown.of(plain, 'kind')).toThrow(/"judge" has no per-example statistics/);
  });
});
