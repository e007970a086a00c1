import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@skd/core';
import { referenceTokenizer, runReference, type ReferenceTokenizerStyle } from '@skd/testing';
import { HfTokenizer } from './hf-tokenizer';

// 200 strings a tokenizer gets wrong first: special tokens inside text, non-ASCII scripts, emoji,
// whitespace runs and rare spaces (U+0085 and U+FEFF, where Oniguruma's \s and JavaScript's differ),
// contractions in both cases, digits, code.
const PIECES = [
  'Hello',
  ' world',
  'Tom has 12 apples.',
  "It's",
  " they'VE",
  "I'M",
  " DON'T",
  '  ',
  '   ',
  '\t',
  '\n',
  '\n\n',
  ' \n ',
  '\r\n',
  'naïve café',
  'Zürich',
  ' Ελληνικά',
  'русский',
  'العربية',
  'हिन्दी',
  '日本語のテキスト',
  '中文',
  '한국어',
  '🙂',
  '👍🏽',
  '🚀🚀',
  '∑∫√',
  '€100',
  '3.14159',
  '12345678',
  '-42',
  '2026-12-04',
  'def f(x):\n    return x',
  'snake_case',
  'CamelCase',
  'https://ex.com/a?b=1',
  '\u0085',
  '\ufeff',
  '\u00a0',
  '\u3000',
  '\u2028',
  'a\u0301',
  'Å',
  '...',
  '!!',
  '"quoted"',
  "'single'",
  '#### 7',
  '<|',
  '|>',
];

function strings(specials: readonly string[]): string[] {
  const rng = Rng.create(7);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng.random() * xs.length)] as T;
  const out = [...PIECES, ...specials.map((s) => `${s}Hello${s} world`), '', ' ', 'a'];
  while (out.length < 200) {
    const n = 1 + Math.floor(rng.random() * 6);
    out.push(Array.from({ length: n }, () => (rng.random() < 0.12 && specials.length ? pick(specials) : pick(PIECES))).join(rng.random() < 0.3 ? ' ' : ''));
  }
  return out;
}

const SPECIALS: Record<ReferenceTokenizerStyle, string[]> = {
  gpt2: ['<|endoftext|>'],
  qwen2: ['<|im_start|>', '<|im_end|>', '<|endoftext|>'],
  llama3: ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>'],
  llama2: ['<s>', '</s>'],
  mistral: ['<s>', '[INST]', '[/INST]'],
  tekken: ['<s>', '</s>', '[INST]', '[/INST]', '<SPECIAL_12>'],
  gemma: ['<bos>', '<start_of_turn>', '<end_of_turn>'],
};

describe.each(['gpt2', 'qwen2', 'llama3', 'llama2', 'mistral', 'tekken', 'gemma'] as const)('the hf tokenizer in %s style, against transformers', (style) => {
  const dir = referenceTokenizer(style);
  const tokenizer = HfTokenizer.fromFolder(dir);
  const texts = strings(SPECIALS[style]);
  const reference = runReference<{ ids: number[][]; decoded: string[] }>(['tokenize', dir], { texts });

  it("gives AutoTokenizer's ids on 200 strings (special tokens, non-ASCII, whitespace runs), BOS framing included", () => {
    expect(texts).toHaveLength(200);
    const mismatches = texts
      .map((text, i) => ({ text, ours: tokenizer.encodeWithSpecialTokens(text), theirs: reference.ids[i] }))
      .filter((m) => JSON.stringify(m.ours) !== JSON.stringify(m.theirs));
    expect(mismatches.slice(0, 3)).toEqual([]);
  });

  it('decodes those ids to the text transformers decodes (special tokens skipped)', () => {
    const decoded = reference.ids.map((ids) => tokenizer.decode(ids));
    const mismatches = decoded.map((ours, i) => ({ i, ours, theirs: reference.decoded[i] })).filter((m) => m.ours !== m.theirs);
    expect(mismatches.slice(0, 3)).toEqual([]);
  });
});

describe('a folder without tokenizer.json', () => {
  const make = (files: string[]): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-tok-'));
    for (const name of files) fs.writeFileSync(path.join(dir, name), '{}');
    return dir;
  };

  it.each([
    [[], /tokenizer\.json is missing.*point at a folder with tokenizer\.json/],
    [['tokenizer.model'], /only a SentencePiece tokenizer\.model; save it with transformers/],
    [['tekken.json', 'config.json'], /only Mistral's tekken\.json; save it with transformers.*adds no BOS/],
  ])('with %j fails in one line saying how to write one', (files, message) => {
    expect(() => HfTokenizer.fromFolder(make(files))).toThrow(message);
  });
});
