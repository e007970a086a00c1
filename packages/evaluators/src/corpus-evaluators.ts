import { z } from 'zod';
import { FormatError, defineComponent, type Evaluator, type Metrics, type MetricStatistics, type Prediction } from '@skd/core';
import { checkOutput, isCheckSpec } from './checks';
import { scoreAll, shareOf } from './statistics';
import { bleuFromStatistics, bleuStatistics, chrfFromStatistics, chrfStatistics, rougeL } from './text-metrics';

const BLEU_COLUMNS = 10; // lengths, then matched and total n-grams for n = 1..4
const CHRF_COLUMNS = 18; // hypothesis, reference and matched character n-grams for n = 1..6
const CHRFPP_COLUMNS = 6; // the same for word 1- and 2-grams (chrF++ adds them to chrF's)

/** BLEU and chrF (and chrF++ when asked) of the predictions against the references (translation). */
export class BleuChrf implements Evaluator {
  static readonly kind = 'bleu';
  readonly name = 'bleu';

  constructor(private readonly chrfPlusPlus = false) {}

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    return scoreAll(await this.statistics(predictions), BLEU_COLUMNS + CHRF_COLUMNS + (this.chrfPlusPlus ? CHRFPP_COLUMNS : 0));
  }

  async statistics(predictions: readonly Prediction[]): Promise<MetricStatistics> {
    const wordOrder = this.chrfPlusPlus ? 2 : 0;
    const chrfEnd = BLEU_COLUMNS + CHRF_COLUMNS;
    return {
      rows: predictions.map((p) => [...bleuStatistics(p.text, p.example.response), ...chrfStatistics(p.text, p.example.response, { wordOrder })]),
      score: (sums, count) => ({
        bleu: bleuFromStatistics(sums.slice(0, BLEU_COLUMNS)).score,
        chrf: chrfFromStatistics(sums.slice(BLEU_COLUMNS, chrfEnd)),
        // chrF++ averages over the character and the word orders together.
        ...(this.chrfPlusPlus ? { chrfpp: chrfFromStatistics(sums.slice(BLEU_COLUMNS)) } : {}),
        count,
      }),
    };
  }
}

/** Mean sentence ROUGE-L F-measure (summarization). */
export class RougeL implements Evaluator {
  static readonly kind = 'rouge-l';
  readonly name = 'rouge-l';

  constructor(private readonly tokenizer: 'rouge-score' | 'unicode') {}

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    return scoreAll(await this.statistics(predictions), 1);
  }

  async statistics(predictions: readonly Prediction[]): Promise<MetricStatistics> {
    return {
      rows: predictions.map((p) => [rougeL(p.text, p.example.response, this.tokenizer)]),
      score: (sums, count) => ({ rougeL: count > 0 ? (100 * (sums[0] ?? 0)) / count : 0, count }),
    };
  }
}

/** Share of outputs that pass their example's instruction check (fields.check). */
export class InstructionChecks implements Evaluator {
  static readonly kind = 'instruction-checks';
  readonly name = 'instruction-checks';

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    return scoreAll(await this.statistics(predictions), 1);
  }

  async statistics(predictions: readonly Prediction[]): Promise<MetricStatistics> {
    const rows = predictions.map(({ example, text }) => {
      const spec = example.fields?.['check'];
      if (!isCheckSpec(spec))
        throw new FormatError(example.id, 'instruction example has no valid "check" field', {
          hint: 'keep the dataset\'s "check" field with dataset.options.fields.extra: ["check"]',
        });
      return [checkOutput(text, spec) ? 1 : 0];
    });
    return { rows, score: shareOf('passRate') };
  }
}

export const bleuEntry = defineComponent({
  component: 'evaluator',
  kind: BleuChrf.kind,
  summary: 'corpus BLEU and chrF as sacreBLEU 2 computes them (13a tokenizer, exp smoothing; chrF 6/beta 2)',
  options: z.strictObject({
    chrfPlusPlus: z.boolean().default(false).describe("also report chrfpp: chrF++ (word 1- and 2-grams added, sacreBLEU's CHRF(word_order=2))"),
  }),
  create: (options) => new BleuChrf(options.chrfPlusPlus),
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
