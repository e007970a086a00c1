import { encodePrompt, type ByteSpan, type Tokenizer } from '@skd/core';
import { referenceTokenizer, runReference, type ReferenceTokenizerStyle } from '@skd/testing';
import { BpeTokenizer } from '../bpe-tokenizer';
import { ByteTokenizer } from '../byte-tokenizer';
import { byteSpans, tokenizerBridge } from './bridge';
import { HfTokenizer } from './hf-tokenizer';

const TEXTS = ['The cat sat on the mat.', ' 12345 + 678 = 13023', 'naïve café Zürich, 日本語 and 🙂!', 'def f(x):\n    return x ** 2\n', ''];

const utf8 = (text: string) => new TextEncoder().encode(text);

/** Spans cover the decoded text's bytes in order, each token's own bytes where it holds whole characters. */
function expectWellFormed(tokenizer: Tokenizer, ids: readonly number[], spans: readonly ByteSpan[]): void {
  const bytes = utf8(tokenizer.decode(ids));
  expect(spans).toHaveLength(ids.length);
  let at = 0;
  for (const [start, end] of spans) {
    expect(start).toBe(at);
    expect(end).toBeGreaterThanOrEqual(start);
    at = end;
  }
  expect(at).toBe(bytes.length);
}

describe('byteSpans', () => {
  it('gives each byte of the byte tokenizer its own span, and an end token none', () => {
    const tokenizer = new ByteTokenizer();
    const ids = tokenizer.encode('aé🙂');
    const spans = byteSpans(tokenizer, [...ids, tokenizer.special.eos]);
    // 'é' is two bytes and '🙂' four: the tokens holding part of a character end where it is complete.
    expect(spans).toEqual([
      [0, 1],
      [1, 1],
      [1, 3],
      [3, 3],
      [3, 3],
      [3, 3],
      [3, 7],
      [7, 7],
    ]);
  });

  it.each(['gpt2', 'qwen2', 'llama3'] as ReferenceTokenizerStyle[])("equals TRL's encode_with_byte_offsets on a %s-style byte-level BPE", (style) => {
    const dir = referenceTokenizer(style);
    const tokenizer = HfTokenizer.fromFolder(dir);
    const theirs = runReference<{ ids: number[][]; offsets: [number, number][][] }>(['byte-offsets', dir], { texts: TEXTS });
    TEXTS.forEach((text, i) => {
      const ids = tokenizer.encode(text);
      expect(ids).toEqual(theirs.ids[i]);
      expect(byteSpans(tokenizer, ids)).toEqual(theirs.offsets[i]);
    });
  });

  it.each(['llama2', 'gemma'] as ReferenceTokenizerStyle[])(
    'covers the text of a %s-style sentencepiece tokenizer (byte fallback, a stripped leading space)',
    (style) => {
      const tokenizer = HfTokenizer.fromFolder(referenceTokenizer(style));
      for (const text of TEXTS) {
        const ids = tokenizer.encode(text);
        expectWellFormed(tokenizer, ids, byteSpans(tokenizer, ids));
      }
    },
  );
});

describe('TokenizerBridge', () => {
  const student = new ByteTokenizer();
  const teacher = BpeTokenizer.train(['the cat sat on the mat', 'the dog sat on the log', 'caf\u00e9 na\u00efve'], { vocabSize: 290, minFrequency: 1 });

  it('carries a response to the teacher: the same text, byte spans on both sides ending together, end tokens at the end', () => {
    const bridge = tokenizerBridge(student, teacher);
    const response = [...student.encode('the dog sat on the café'), student.special.eos];
    const bridged = bridge.teacherResponse(response);
    expect(bridged.text).toBe('the dog sat on the café');
    expect(bridged.ended).toBe(true);
    expect(bridged.teacherTokens).toEqual([...teacher.encode(bridged.text), teacher.special.eos]);
    expect(teacher.decode(bridged.teacherTokens)).toBe(bridged.text);
    const end = utf8(bridged.text).length;
    expect(bridged.studentSpans.at(-1)).toEqual([end, end]);
    expect(bridged.teacherSpans.at(-1)).toEqual([end, end]);
    expectWellFormed(student, response, bridged.studentSpans);
    expectWellFormed(teacher, bridged.teacherTokens, bridged.teacherSpans);
    // Merged teacher tokens are fewer than the student's bytes: several student tokens share a teacher token's bytes.
    expect(bridged.teacherTokens.length).toBeLessThan(response.length);
  });

  it('leaves an unfinished response unfinished, and carries teacher text back to student tokens', () => {
    const bridge = tokenizerBridge(student, teacher);
    const cut = bridge.teacherResponse(student.encode('the mat'));
    expect(cut.ended).toBe(false);
    expect(cut.teacherTokens).toEqual(teacher.encode('the mat'));
    expect(bridge.studentResponse([...teacher.encode('the log'), teacher.special.eos])).toEqual([...student.encode('the log'), student.special.eos]);
    expect(bridge.studentResponse(teacher.encode('the log'))).toEqual(student.encode('the log'));
  });

  it("re-encodes a prompt's text with the teacher's BOS", () => {
    const hf = HfTokenizer.fromFolder(referenceTokenizer('llama2'));
    const bridge = tokenizerBridge(student, hf);
    const prompt = encodePrompt(student, 'Question: 2 + 2?');
    const theirs = bridge.teacherPrompt(prompt);
    expect(theirs[0]).toBe(hf.special.bos);
    expect(hf.decode(theirs)).toBe('Question: 2 + 2?');
  });

  it('matches vocabularies by token text, leaving out specials, partial characters and texts two ids share', () => {
    const bridge = tokenizerBridge(student, teacher);
    const { student: s, teacher: t } = bridge.vocabularies();
    expect(s.get('a')).toBe(student.encode('a')[0]);
    expect(t.get('a')).toBe(teacher.encode('a')[0]);
    for (const [text, id] of t) {
      expect(teacher.decode([id])).toBe(text);
      expect(text).not.toContain('\uFFFD');
    }
    expect([...s.values()]).not.toContain(student.special.eos);
    expect(s.size).toBeLessThanOrEqual(128); // single bytes above 0x7f are parts of characters
    expect(bridge.vocabularies()).toBe(bridge.vocabularies());
  });

  it('is one bridge per pair, and refuses a tokenizer paired with itself', () => {
    expect(tokenizerBridge(student, teacher)).toBe(tokenizerBridge(student, teacher));
    expect(() => tokenizerBridge(student, new ByteTokenizer())).toThrow(/teacher tokenizer is the student tokenizer/);
  });
});
