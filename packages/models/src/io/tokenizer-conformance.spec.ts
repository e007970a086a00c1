import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePrompt } from '@skd/core';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { BpeTokenizer } from '../bpe-tokenizer';
import { readBpeTokenizer, writeBpeTokenizer } from './tokenizer-files';

// Every tokenizer.json skd writes must be one Hugging Face's own library (the Rust `tokenizers`,
// shared by Python's tokenizers and transformers) loads and encodes to the same ids as skd:
// the committed ones of the experiments, and freshly trained ones (with and without split digits).

const repo = path.resolve(__dirname, '../../../..');
const TEST_SETS: Record<string, string> = {
  arithmetic: 'data/arithmetic/test.jsonl',
  translation: 'data/translation-as-en/test.jsonl',
  summarization: 'data/summarization/test.jsonl',
};
/** Texts with the special tokens written in them (Hugging Face and skd encode them as the tokens). */
const SPECIAL_TEXTS = ['<|eos|>', 'a<|eos|>b', 'x <|pad|><|bos|> y', '<|eos', '<<|eos|>>', ' <|eos|> ', 'done.<|eos|>\n<|eos|>'];

function testTexts(file: string, count: number): string[] {
  const lines = fs.readFileSync(path.join(repo, file), 'utf8').trim().split('\n').slice(0, count);
  return lines.flatMap((line) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    return Object.values(record).filter((v): v is string => typeof v === 'string');
  });
}

async function expectSameAsHuggingFace(file: string, texts: readonly string[]): Promise<void> {
  const ours = readBpeTokenizer(file);
  const theirs = HfTokenizer.fromFile(file);
  // Files skd writes now frame a sequence with BOS as skd frames a prompt (the committed ones predate that).
  const framed = (JSON.parse(fs.readFileSync(file, 'utf8')) as { post_processor?: { type?: string } | null }).post_processor?.type === 'TemplateProcessing';
  let compared = 0;
  for (const text of [...texts, ...SPECIAL_TEXTS]) {
    const ids = ours.encode(text);
    const encoding = await theirs.encode(text);
    expect({ text, ids: encoding.getIds() }).toEqual({ text, ids: framed ? encodePrompt(ours, text) : ids });
    // Decoding (special tokens kept) gives back the text, in both.
    expect(await theirs.decode(ids, false)).toBe(ours.decode(ids, { keepSpecial: true }));
    compared++;
  }
  expect(compared).toBeGreaterThan(SPECIAL_TEXTS.length);
  // The roles of the special tokens are read back from tokenizer_config.json, not guessed.
  expect(theirs.tokenToId('<|eos|>')).toBe(ours.special.eos);
  expect(theirs.tokenToId('<|pad|>')).toBe(ours.special.pad);
}

describe('tokenizer.json conformance with Hugging Face tokenizers', () => {
  it.each(Object.entries(TEST_SETS))('the committed %s tokenizer encodes its test set as Hugging Face does', async (task, data) => {
    await expectSameAsHuggingFace(path.join(repo, 'experiments', task, 'tokenizer.json'), testTexts(data, 100));
  });

  it.each([false, true])('a freshly trained tokenizer (splitDigits %s) encodes as Hugging Face does', async (splitDigits) => {
    const corpus = [...testTexts(TEST_SETS.arithmetic as string, 150), ...testTexts(TEST_SETS.translation as string, 150)];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-tok-'));
    const file = path.join(dir, 'tokenizer.json');
    writeBpeTokenizer(file, BpeTokenizer.train(corpus, { vocabSize: 600, splitDigits }));
    await expectSameAsHuggingFace(file, [...corpus.slice(0, 80), 'unseen wörds, ünïcödé ✓ and 12345 digits', '']);
  });
});
