import type { Tokenizer } from '@skd/core';

/** Texts that tell tokenizers apart: scripts, digits, whitespace, code, and each one's special tokens. */
const PROBES = [
  'Hello, world!',
  ' The quick brown fox jumps over 13 lazy dogs.',
  '12345 + 678 = 13023',
  'naïve café Zürich',
  'Ελληνικά русский 日本語 한국어 العربية',
  '🙂🚀',
  '  two  spaces\tand\ttabs\n\nnewlines',
  'def f(x):\n    return x ** 2',
];

/**
 * Why two tokenizers would read the same ids as different text, or undefined when they agree:
 * same fingerprint, or the same vocabulary size and the same ids and decodings on probe texts
 * (including both ones' special tokens written out). Token-level KD between models needs this;
 * equal embedding sizes alone prove nothing.
 */
export function tokenizerDifference(a: Tokenizer, b: Tokenizer): string | undefined {
  if (a.fingerprint === b.fingerprint) return undefined;
  if (a.vocabSize !== b.vocabSize) return `vocabulary ${a.vocabSize} vs ${b.vocabSize}`;
  // Which token plays EOS may differ (a base model's <|endoftext|>, its instruct model's <|im_end|>):
  // KD needs the ids to mean the same strings, which the special tokens written out also check.
  const specials = [...new Set([a.special.eos, a.special.bos, a.special.pad, b.special.eos, b.special.bos, b.special.pad])]
    .filter((id): id is number => id !== undefined && id < a.vocabSize)
    .map((id) => a.decode([id], { keepSpecial: true }));
  for (const text of [...PROBES, ...specials.map((s) => `${s}x${s}`)]) {
    const ids = a.encode(text);
    const other = b.encode(text);
    if (ids.join() !== other.join())
      return `${JSON.stringify(text)} encodes to [${ids.slice(0, 8).join(', ')}${ids.length > 8 ? ', ...' : ''}] vs [${other.slice(0, 8).join(', ')}${other.length > 8 ? ', ...' : ''}]`;
    if (a.decode(ids, { keepSpecial: true }) !== b.decode(ids, { keepSpecial: true })) return `the ids of ${JSON.stringify(text)} decode differently`;
  }
  return undefined;
}
