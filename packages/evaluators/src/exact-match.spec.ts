import type { Example } from '@skd/core';
import { ExactMatch, answerNumber, answersMatch, extractAnswer } from './exact-match';

const example = (response: string): Example => ({ id: 'x', prompt: 'q', response });

describe('exact match', () => {
  it('compares the answer after the last marker, normalising whitespace and thousands separators', () => {
    expect(extractAnswer('step 1 #### 3 then #### 1,234 ', '####')).toBe('1234');
    expect(extractAnswer('no marker here', '####')).toBe('');
    expect(extractAnswer('  a   b\n', undefined)).toBe('a b');
  });

  it('scores hits, misses, predictions without an answer and Assamese text', async () => {
    const gsm = new ExactMatch({ answerMarker: '####' });
    const metrics = await gsm.evaluate([
      { example: example('2 + 3 = 5\n#### 5'), text: 'so #### 5' },
      { example: example('#### 12'), text: '#### 13' },
      { example: example('#### 7'), text: 'I do not know' },
      { example: example('#### 1,000'), text: '#### 1000' },
    ]);
    expect(metrics).toEqual({ exactMatch: 0.5, count: 4 });
    const plain = new ExactMatch();
    expect(await plain.evaluate([{ example: example('অসমীয়া'), text: ' অসমীয়া ' }])).toEqual({ exactMatch: 1, count: 1 });
    expect(await plain.evaluate([])).toEqual({ exactMatch: 0, count: 0 });
  });

  it('never counts an empty reference answer as matched', async () => {
    const gsm = new ExactMatch({ answerMarker: '####' });
    expect(await gsm.evaluate([{ example: example('no answer'), text: 'anything' }])).toEqual({ exactMatch: 0, count: 1 });
  });

  it('compare number: the first numbers after the marker are equal (1,000 = 1000 = 1000.0), where text compares the strings', async () => {
    const number = { answerMarker: '####', compare: 'number' } as const;
    expect(answerNumber('$1,000.50 dollars')).toBe(1000.5);
    expect(answerNumber(' -.5')).toBe(-0.5);
    expect(answerNumber('none')).toBeUndefined();
    for (const text of ['#### 1000', '#### 1,000', '#### 1000.0', '#### $1000 in total', 'x #### 999 #### 1000.00'])
      expect([text, answersMatch(text, '#### 1,000', number)]).toEqual([text, true]);
    for (const text of ['#### 1001', '#### 100', 'no marker 1000', '#### one thousand'])
      expect([text, answersMatch(text, '#### 1,000', number)]).toEqual([text, false]);
    // A reference without a number is compared as text.
    expect(answersMatch('#### yes', '#### yes', number)).toBe(true);
    expect(answersMatch('#### 1000.0', '#### 1000', { answerMarker: '####' })).toBe(false);
    const metrics = await new ExactMatch(number).evaluate([
      { example: example('#### 1,000'), text: '#### 1000.0' },
      { example: example('#### 12'), text: '#### 13' },
    ]);
    expect(metrics).toEqual({ exactMatch: 0.5, count: 2 });
  });
});
