import { z } from 'zod';
import { defineComponent, type Evaluator, type Metrics, type MetricStatistics, type Prediction } from '@skd/core';
import { scoreAll, shareOf } from './statistics';

export interface ExactMatchArgs {
  /** Compare only what follows the last occurrence of this marker (e.g. "####"); unset: whole text. */
  readonly answerMarker?: string;
}

/** Whitespace-normalised text after an optional marker, as GSM8K's final-answer check reads it. */
export function extractAnswer(text: string, marker?: string): string {
  let answer = text;
  if (marker) {
    const at = text.lastIndexOf(marker);
    if (at < 0) return '';
    answer = text.slice(at + marker.length);
  }
  return answer.normalize('NFC').trim().replace(/\s+/g, ' ').replace(/,(?=\d{3}\b)/g, '');
}

/** Share of predictions whose (extracted) answer equals the reference's. */
export class ExactMatch implements Evaluator {
  static readonly kind = 'exact-match';
  readonly name = 'exact-match';

  constructor(private readonly args: ExactMatchArgs = {}) {}

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    return scoreAll(await this.statistics(predictions), 1);
  }

  async statistics(predictions: readonly Prediction[]): Promise<MetricStatistics> {
    const rows = predictions.map(({ example, text }) => {
      const expected = extractAnswer(example.response, this.args.answerMarker);
      return [expected !== '' && extractAnswer(text, this.args.answerMarker) === expected ? 1 : 0];
    });
    return { rows, score: shareOf('exactMatch') };
  }
}

export const exactMatchEntry = defineComponent({
  component: 'evaluator',
  kind: ExactMatch.kind,
  summary: 'exact match of the (final) answer, whitespace- and thousands-separator-normalised',
  options: z.strictObject({
    answerMarker: z.string().min(1).optional().describe('compare what follows the last marker, e.g. "####"'),
  }),
  create: (options) => new ExactMatch(options),
});
