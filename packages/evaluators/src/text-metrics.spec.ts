import type { Example, Prediction } from '@skd/core';
import { checkOutput } from './checks';
import { BleuChrf, InstructionChecks, RougeL } from './corpus-evaluators';
import { chrfWords, corpusBleu, corpusChrf, rougeL, rougeTokens, tokenize13a } from './text-metrics';

const prediction = (text: string, response: string, fields?: Record<string, unknown>): Prediction => ({
  example: { id: 'x', prompt: 'p', response, ...(fields ? { fields } : {}) } as Example,
  text,
});

describe('13a tokenization (sacreBLEU default)', () => {
  it('splits punctuation and symbols, keeps decimals and thousands, unescapes entities', () => {
    expect(tokenize13a('Hello, world! It costs $3.50 (or 1,000 yen).')).toEqual([
      'Hello',
      ',',
      'world',
      '!',
      'It',
      'costs',
      '$',
      '3.50',
      '(',
      'or',
      '1,000',
      'yen',
      ')',
      '.',
    ]);
    expect(tokenize13a('a &quot;b&quot; -- 1-2')).toEqual(['a', '"', 'b', '"', '--', '1', '-', '2']); // '-' splits only after a digit
    expect(tokenize13a("don't stop")).toEqual(["don't", 'stop']);
  });
});

describe('BLEU', () => {
  it('matches the hand computation: clipped 1-4-gram precisions 5/6, 3/5, 1/4, exp-smoothed 1/(2*3)', () => {
    const result = corpusBleu(['the cat sat on the mat'], ['the cat is on the mat']);
    expect(result.score).toBeCloseTo(37.99178428257963, 6);
    expect(result.precisions.map((p) => p / 100)).toEqual([5 / 6, 3 / 5, 1 / 4, 1 / 6].map((p) => expect.closeTo(p, 12)));
    expect(result.brevityPenalty).toBe(1);
  });

  it('is 100 for identical text (any script), 0 for an empty hypothesis, and applies the brevity penalty', () => {
    expect(corpusBleu(['the quick brown fox jumps'], ['the quick brown fox jumps']).score).toBeCloseTo(100, 10);
    expect(corpusBleu(['অসমীয়া ভাষা এটা সুন্দৰ ভাষা'], ['অসমীয়া ভাষা এটা সুন্দৰ ভাষা']).score).toBeCloseTo(100, 10);
    expect(corpusBleu([''], ['something here']).score).toBe(0);
    const short = corpusBleu(['a b c d'], ['a b c d e f g h']);
    expect(short.brevityPenalty).toBeCloseTo(Math.exp(1 - 8 / 4), 12);
    expect(short.score).toBeCloseTo(100 * Math.exp(1 - 2), 8);
  });

  it('pools n-gram counts over the corpus rather than averaging sentence scores', () => {
    const pooled = corpusBleu(['a b c d', 'w x y z'], ['a b c d', 'w x y q']);
    // 1-grams 7/8, 2-grams 5/6, 3-grams 3/4, 4-grams 1/2 over both sentences
    expect(pooled.score).toBeCloseTo(100 * Math.exp((Math.log(7 / 8) + Math.log(5 / 6) + Math.log(3 / 4) + Math.log(1 / 2)) / 4), 8);
  });
});

describe('chrF', () => {
  it('matches the hand computation for "ab" vs "abc" (averaged P = 1, R = 7/12, beta 2)', () => {
    expect(corpusChrf(['ab'], ['abc'])).toBeCloseTo(63.63636363636363, 8);
  });

  it('ignores whitespace, handles Assamese, and is 0 for an empty hypothesis', () => {
    expect(corpusChrf(['a b c'], ['abc'])).toBeCloseTo(100, 10);
    expect(corpusChrf(['অসমীয়া'], ['অসমীয়া'])).toBeCloseTo(100, 10);
    expect(corpusChrf([''], ['abc'])).toBe(0);
    expect(corpusChrf(['অসম'], ['অসমীয়া'])).toBeGreaterThan(0);
  });

  it('counts no hypothesis n-grams of an order the reference has none of ("abcdefg" vs "abc": orders 1-3 only)', () => {
    // n=1: P 3/7, R 1; n=2: P 1/3 (ab of 6), R 1; n=3: P 1/5, R 1; n=4..6: the reference has no n-grams.
    const p = (3 / 7 + 1 / 3 + 1 / 5) / 3;
    expect(corpusChrf(['abcdefg'], ['abc'])).toBeCloseTo((100 * 5 * p * 1) / (4 * p + 1), 10);
  });

  it('splits whitespace as Python does: U+FEFF is a character, U+0085 and U+001F are spaces', () => {
    expect(corpusChrf(['a\u0085b\u001fc'], ['abc'])).toBeCloseTo(100, 10);
    expect(corpusChrf(['a\ufeffbc'], ['abc'])).toBeLessThan(100);
  });

  it('chrF++ adds word 1- and 2-grams, a punctuation mark split off each word ("cat." is "cat" and ".")', () => {
    expect(chrfWords('the cat. (sat) a, !')).toEqual(['the', 'cat', '.', '(sat', ')', 'a', ',', '!']);
    expect(corpusChrf(['the cat.'], ['the cat .'], { wordOrder: 2 })).toBeCloseTo(100, 10);
    // Characters identical, words differ: chrF is 100, chrF++ is not.
    expect(corpusChrf(['thecat sat'], ['the catsat'])).toBeCloseTo(100, 10);
    expect(corpusChrf(['thecat sat'], ['the catsat'], { wordOrder: 2 })).toBeLessThan(100);
  });
});

describe('ROUGE-L (rouge-score)', () => {
  it('is the LCS F-measure on lowercased alphanumeric tokens', () => {
    expect(rougeL('the cat sat on the mat', 'the cat is on the mat')).toBeCloseTo(5 / 6, 12);
    expect(rougeL('The CAT!', 'the cat')).toBe(1);
    expect(rougeL('', 'the cat')).toBe(0);
    expect(rougeL('cat the', 'the cat')).toBeCloseTo(0.5, 12);
  });

  it("gives the hand-worked values of rouge-score's definition: P = LCS / prediction tokens, R = LCS / reference tokens, F1", () => {
    // Lin (2004)'s examples: LCS 3 of 4 and 4; LCS "the gunman" 2 of 7 and 4.
    expect(rougeL('police kill the gunman', 'police killed the gunman')).toBeCloseTo(3 / 4, 12);
    expect(rougeL('the gunman was shot down by police', 'police killed the gunman')).toBeCloseTo(4 / 11, 12);
    // Underscores, apostrophes and hyphens split words; digits stay; both sides empty is 0.
    expect(rougeTokens("Don't re-use snake_case 42x!")).toEqual(['don', 't', 're', 'use', 'snake', 'case', '42x']);
    expect(rougeL('re-use', 're use')).toBe(1);
    expect(rougeL('', '')).toBe(0);
    expect(rougeL('!!!', 'the cat')).toBe(0);
  });

  it('drops non-Latin scripts like rouge-score does, or keeps them with the unicode tokenizer', () => {
    expect(rougeTokens('অসমীয়া ভাষা')).toEqual([]);
    expect(rougeTokens('অসমীয়া ভাষা', 'unicode')).toEqual(['অসমীয়া', 'ভাষা']);
    expect(rougeL('অসমীয়া ভাষা', 'অসমীয়া ভাষা', 'unicode')).toBe(1);
  });
});

describe('evaluators', () => {
  it('report corpus BLEU, chrF and mean ROUGE-L', async () => {
    const preds = [prediction('the cat sat on the mat', 'the cat is on the mat'), prediction('hello', 'hello')];
    const bleu = await new BleuChrf().evaluate(preds);
    expect(bleu['count']).toBe(2);
    expect(bleu['bleu']).toBeGreaterThan(30);
    expect(await new RougeL('rouge-score').evaluate(preds)).toEqual({ rougeL: expect.closeTo((100 * (5 / 6 + 1)) / 2, 8), count: 2 });
  });

  it('check instructions from the output alone', async () => {
    expect(checkOutput(' 2, 5,9 ', { type: 'list', expected: ['2', '5', '9'] })).toBe(true);
    expect(checkOutput('2, 9, 5', { type: 'list', expected: ['2', '5', '9'] })).toBe(false);
    expect(checkOutput('1,234', { type: 'number', expected: 1234 })).toBe(true);
    expect(checkOutput('', { type: 'number', expected: 0 })).toBe(false);
    expect(checkOutput('ELPPA', { type: 'exact', expected: 'elppa', caseSensitive: false })).toBe(true);
    expect(checkOutput('ELPPA', { type: 'exact', expected: 'elppa' })).toBe(false);
    expect(checkOutput('05/03/2024', { type: 'regex', pattern: '^\\d{2}/\\d{2}/\\d{4}$' })).toBe(true);
    const checks = new InstructionChecks();
    expect(
      await checks.evaluate([
        prediction('3', '3', { check: { type: 'number', expected: 3 } }),
        prediction('x', '4', { check: { type: 'number', expected: 4 } }),
      ]),
    ).toEqual({ passRate: 0.5, count: 2 });
    await expect(checks.evaluate([prediction('3', '3')])).rejects.toThrow('instruction example has no valid "check" field');
  });
});
