import { z } from 'zod';
import { FormatError, defineComponent, type Evaluator, type Metrics, type Prediction } from '@skd/core';
import { checkOutput, isCheckSpec } from './checks';
import { corpusBleu, corpusChrf, rougeL } from './text-metrics';

/** BLEU and chrF of the predictions against the references (translation). */
export class BleuChrf implements Evaluator {
  static readonly kind = 'bleu';
  readonly name = 'bleu';

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    const hyps = predictions.map((p) => p.text);
    const refs = predictions.map((p) => p.example.response);
    return { bleu: corpusBleu(hyps, refs).score, chrf: corpusChrf(hyps, refs), count: predictions.length };
  }
}

/** Mean sentence ROUGE-L F-measure (summarization). */
export class RougeL implements Evaluator {
  static readonly kind = 'rouge-l';
  readonly name = 'rouge-l';

  constructor(private readonly tokenizer: 'rouge-score' | 'unicode') {}

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    if (predictions.length === 0) return { rougeL: 0, count: 0 };
    const total = predictions.reduce((s, p) => s + rougeL(p.text, p.example.response, this.tokenizer), 0);
    return { rougeL: (100 * total) / predictions.length, count: predictions.length };
  }
}

/** Share of outputs that pass their example's instruction check (fields.check). */
export class InstructionChecks implements Evaluator {
  static readonly kind = 'instruction-checks';
  readonly name = 'instruction-checks';

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    if (predictions.length === 0) return { passRate: 0, count: 0 };
    let passed = 0;
    for (const { example, text } of predictions) {
      const spec = example.fields?.['check'];
      if (!isCheckSpec(spec)) throw new FormatError(example.id, 'instruction example has no valid "check" field', { hint: 'keep the dataset\'s "check" field with fields.extra: ["check"]' });
      if (checkOutput(text, spec)) passed += 1;
    }
    return { passRate: passed / predictions.length, count: predictions.length };
  }
}

export const bleuEntry = defineComponent({
  component: 'evaluator',
  kind: BleuChrf.kind,
  summary: 'corpus BLEU and chrF as sacreBLEU computes them (13a tokenizer, exp smoothing; chrF 6/beta 2)',
  options: z.strictObject({}),
  create: () => new BleuChrf(),
});

export const rougeEntry = defineComponent({
  component: 'evaluator',
  kind: RougeL.kind,
  summary: 'mean ROUGE-L F-measure as rouge-score defines it',
  options: z.strictObject({
    tokenizer: z.enum(['rouge-score', 'unicode']).default('rouge-score').describe('rouge-score drops non-Latin text; unicode keeps every script'),
  }),
  create: (options) => new RougeL(options.tokenizer),
});

export const instructionEntry = defineComponent({
  component: 'evaluator',
  kind: InstructionChecks.kind,
  summary: 'pass rate of verifiable instruction checks (fields.check)',
  options: z.strictObject({}),
  create: () => new InstructionChecks(),
});
