import { z } from 'zod';
import { defineComponent, type Evaluator, type Metrics, type Prediction } from '@skd/core';

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
    if (predictions.length === 0) return { exactMatch: 0, count: 0 };
    let hits = 0;
    for (const { example, text } of predictions) {
      const expected = extractAnswer(example.response, this.args.answerMarker);
      if (expected !== '' && extractAnswer(text, this.args.answerMarker) === expected) hits += 1;
    }
    return { exactMatch: hits / predictions.length, count: predictions.length };
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
