import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SpecialTokens, Tokenizer } from '@skd/core';
import { referenceTokenizer } from '@skd/testing';
import { tokenizerDifference } from './compare';
import { HfTokenizer } from './hf-tokenizer';

/** The same tokenizer under another fingerprint, with other special roles: what a second folder of the same family looks like. */
function sameIdsAs(t: Tokenizer, special: Partial<SpecialTokens>): Tokenizer {
  return {
    kind: t.kind,
    vocabSize: t.vocabSize,
    special: { ...t.special, ...special },
    fingerprint: `${t.fingerprint}-other-folder`,
    encode: (text) => t.encode(text),
    decode: (ids, options) => t.decode(ids, options),
    toJSON: () => t.toJSON(),
  };
}

/** A copy of a tokenizer folder with its tokenizer.json edited. */
function edited(dir: string, edit: (doc: { model: { merges: unknown[]; vocab: Record<string, number> } }) => void): HfTokenizer {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-tok-'));
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(out, f));
  const doc = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'));
  edit(doc);
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(doc));
  return HfTokenizer.fromFolder(out);
}

describe('tokenizerDifference', () => {
  const dir = referenceTokenizer('qwen2');
  const base = HfTokenizer.fromFolder(dir);
  const id = (token: string) => base.encode(token)[0] as number;

  it('accepts a tokenizer that gives the same ids even when another token plays EOS (base model <|endoftext|>, instruct model <|im_end|>)', () => {
    const other = id(base.special.eos === id('<|im_end|>') ? '<|endoftext|>' : '<|im_end|>');
    expect(other).not.toBe(base.special.eos);
    expect(tokenizerDifference(base, sameIdsAs(base, { eos: other, pad: other }))).toBeUndefined();
    expect(tokenizerDifference(base, base)).toBeUndefined();
  });

  it('refuses one whose merges differ, naming a text and both encodings', () => {
    const fewerMerges = edited(dir, (doc) => doc.model.merges.splice(0, doc.model.merges.length / 2));
    expect(fewerMerges.vocabSize).toBe(base.vocabSize);
    expect(tokenizerDifference(base, fewerMerges)).toMatch(/encodes to \[.*\] vs \[.*\]/);
  });

  it('refuses one whose ids mean other strings, found through the special tokens written out', () => {
    // Two vocabulary entries trade ids: every probe still encodes, but the special token the other side holds reads differently.
    const eos = base.special.eos;
    const swapped: Tokenizer = { ...sameIdsAs(base, {}), encode: (text) => base.encode(text).map((i) => (i === eos ? eos - 1 : i === eos - 1 ? eos : i)) };
    const written = base.decode([eos], { keepSpecial: true });
    expect(tokenizerDifference(base, swapped)).toContain(`${written}x${written}`);
  });

  it('refuses a different vocabulary size before anything else', () => {
    const bigger = { ...sameIdsAs(base, {}), vocabSize: base.vocabSize + 64 };
    expect(tokenizerDifference(base, bigger)).toBe(`vocabulary ${base.vocabSize} vs ${base.vocabSize + 64}`);
  });
});
