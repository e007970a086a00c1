import { z } from 'zod';
import { defineComponent, type Evaluator, type Metrics, type MetricStatistics, type Prediction } from '@skd/core';
import { scoreAll, shareOf } from './statistics';

export interface ExactMatchArgs {
  /** Compare only what follows the last occurrence of this marker (e.g. "####"); unset: whole text. */
  readonly answerMarker?: string;
  /** text: the normalised answers are equal; number: their first numbers are (1,000 = 1000 = 1000.0). */
  readonly compare?: 'text' | 'number';
}

/** Whitespace-normalised text after an optional marker, as GSM8K's final-answer check reads it. */
export function extractAnswer(text: string, marker?: string): string {
  let answer = text;
  if (marker) {
    const at = text.lastIndexOf(marker);
    if (at < 0) return '';
    answer = text.slice(at + marker.length);
  }
  return answer
    .normalize('NFC')
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/,(?=\d{3}\b)/g, '');
}

/** The first number in an answer, thousands separators dropped ("$1,000.50 dollars" is 1000.5), or undefined. */
export function answerNumber(answer: string): number | undefined {
  const match = /[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)/.exec(answer);
  if (!match) return undefined;
  const value = Number(match[0].replace(/,/g, ''));
  return Number.isFinite(value) ? value : undefined;
}

/** Whether a prediction's answer equals the reference's, as text or as numbers (a reference without a number is compared as text). */
export function answersMatch(prediction: string, reference: string, args: ExactMatchArgs = {}): boolean {
  const expected = extractAnswer(reference, args.answerMarker);
  if (expected === '') return false;
  const given = extractAnswer(prediction, args.answerMarker);
  const expectedNumber = args.compare === 'number' ? answerNumber(expected) : undefined;
  return expectedNumber === undefined ? given === expected : answerNumber(given) === expectedNumber;
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
    const rows = predictions.map(({ example, text }) => [answersMatch(text, example.response, this.args) ? 1 : 0]);
    return { rows, score: shareOf('exactMatch') };
  }
}

export const exactMatchEntry = defineComponent({
  component: 'evaluator',
  kind: ExactMatch.kind,
  summary: 'exact match of the (final) answer, whitespace- and thousands-separator-normalised',
  options: z.strictObject({
    answerMarker: z.string().min(1).optional().describe('compare what follows the last marker, e.g. "####"'),
    compare: z
      .enum(['text', 'number'])
      .default('text')
      .describe('text: the normalised answers are equal; number: their first numbers are equal (1,000 = 1000 = 1000.0), as GSM8K scorers compare'),
  }),
  create: (options) => new ExactMatch(options),
});
