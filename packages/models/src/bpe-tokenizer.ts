import { createHash } from 'node:crypto';
import { FormatError, SkdError, type SpecialTokens, type Tokenizer } from '@skd/core';

/**
 * Byte-level BPE (the GPT-2 family's scheme): text splits into pre-tokens by a regex, each
 * pre-token's UTF-8 bytes map to printable characters, and learned merges join adjacent symbols by
 * rank. Reads and writes Hugging Face `tokenizer.json` (model type BPE, ByteLevel pre-tokenizer),
 * so real tokenizers load, and trains on a corpus.
 */

// GPT-2's pre-tokenizer: contractions, letters, numbers, other symbols, each with an optional
// leading space; runs of whitespace.
const PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible byte → printable character map (printable bytes map to themselves). */
function byteAlphabet(): { toChar: string[]; toByte: Map<string, number> } {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const toChar: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) toChar[b] = String.fromCodePoint(printable(b) ? b : next++);
  return { toChar, toByte: new Map(toChar.map((c, b) => [c, b])) };
}

const ALPHABET = byteAlphabet();
const encoder = new TextEncoder();

export interface BpeSpecialNames {
  readonly pad: string;
  readonly eos: string;
  readonly bos?: string;
}

export interface BpeTrainOptions {
  /** Final vocabulary size, byte alphabet and special tokens included. */
  readonly vocabSize: number;
  /** Special token strings, appended after the merges. */
  readonly special?: BpeSpecialNames;
  /** Ignore pairs seen fewer times (default 2). */
  readonly minFrequency?: number;
}

export class BpeTokenizer implements Tokenizer {
  static readonly kind = 'bpe';
  readonly kind = BpeTokenizer.kind;
  readonly special: SpecialTokens;
  readonly fingerprint: string;
  private readonly ranks: Map<string, number>;
  private readonly idToToken: string[];
  private readonly specialIds: Set<number>;
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly merges: readonly [string, string][],
    private readonly addedTokens: ReadonlyMap<string, number>,
    names: BpeSpecialNames,
  ) {
    this.ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    this.idToToken = [];
    for (const [token, id] of [...vocab, ...addedTokens]) this.idToToken[id] = token;
    const idOf = (name: string | undefined, role: string): number | undefined => {
      if (name === undefined) return undefined;
      const id = addedTokens.get(name) ?? vocab.get(name);
      if (id === undefined) {
        throw new SkdError(`special token ${JSON.stringify(name)} (${role}) is not in the vocabulary`, {
          hint: `use one of the added tokens: ${[...addedTokens.keys()].slice(0, 8).join(', ') || '(none)'}`,
        });
      }
      return id;
    };
    this.special = { pad: idOf(names.pad, 'pad') as number, eos: idOf(names.eos, 'eos') as number, ...(names.bos ? { bos: idOf(names.bos, 'bos') as number } : {}) };
    this.specialIds = new Set(addedTokens.values());
    this.fingerprint = `bpe:${createHash('sha256').update(JSON.stringify([[...vocab].sort(), merges, [...addedTokens].sort()])).digest('hex').slice(0, 16)}`;
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const match of text.matchAll(PRETOKEN)) {
      const piece = match[0];
      let cached = this.cache.get(piece);
      if (!cached) {
        cached = this.encodePiece(piece);
        if (this.cache.size < 100_000) this.cache.set(piece, cached);
      }
      ids.push(...cached);
    }
    return ids;
  }

  decode(ids: readonly number[], options: { readonly keepSpecial?: boolean } = {}): string {
    const bytes: number[] = [];
    let out = '';
    const flush = () => {
      out += new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(bytes));
      bytes.length = 0;
    };
    for (const id of ids) {
      const token = this.idToToken[id];
      if (token === undefined) throw new SkdError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (this.specialIds.has(id)) {
        if (options.keepSpecial) {
          flush();
          out += token;
        }
        continue;
      }
      for (const ch of token) {
        const b = ALPHABET.toByte.get(ch);
        if (b !== undefined) bytes.push(b);
      }
    }
    flush();
    return out;
  }

  /** Hugging Face `tokenizer.json` (merges written as "a b" strings, readable by every version). */
  toJSON(): unknown {
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...this.addedTokens].map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        vocab: Object.fromEntries(this.vocab),
        merges: this.merges.map(([a, b]) => `${a} ${b}`),
      },
      skd: { special: this.specialNames() },
    };
  }

  private specialNames(): BpeSpecialNames {
    const name = (id: number | undefined) => (id === undefined ? undefined : this.idToToken[id]);
    return { pad: name(this.special.pad) as string, eos: name(this.special.eos) as string, ...(this.special.bos !== undefined ? { bos: name(this.special.bos) as string } : {}) };
  }

  private encodePiece(piece: string): number[] {
    let symbols = Array.from(encoder.encode(piece), (b) => ALPHABET.toChar[b] as string);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const merged = (symbols[best] as string) + (symbols[best + 1] as string);
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === symbols[best] && symbols[i + 1] === symbols[best + 1]) {
          next.push(merged);
          i++;
        } else next.push(symbols[i] as string);
      }
      symbols = next;
    }
    return symbols.map((s) => {
      const id = this.vocab.get(s);
      if (id === undefined) throw new SkdError(`BPE symbol ${JSON.stringify(s)} has no id: the vocabulary lacks a byte or a merge result`);
      return id;
    });
  }

  /** Reads a Hugging Face `tokenizer.json` (byte-level BPE); `special` names pad/eos/bos tokens. */
  static fromJSON(json: unknown, source = 'tokenizer.json', special?: Partial<BpeSpecialNames>): BpeTokenizer {
    const doc = json as {
      model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
      pre_tokenizer?: { type?: string } | null;
      added_tokens?: { id: number; content: string }[];
      skd?: { special?: BpeSpecialNames };
    };
    if (doc?.model?.type !== 'BPE' || !doc.model.vocab || !Array.isArray(doc.model.merges)) {
      throw new FormatError(source, `unsupported tokenizer: model type ${JSON.stringify(doc?.model?.type)}; skd reads byte-level BPE (GPT-2 style) tokenizer.json files`);
    }
    if (doc.pre_tokenizer?.type !== 'ByteLevel') {
      throw new FormatError(source, `unsupported pre_tokenizer ${JSON.stringify(doc.pre_tokenizer?.type ?? null)}; skd reads byte-level BPE (pre_tokenizer "ByteLevel")`);
    }
    const merges = doc.model.merges.map((m, i) => {
      const pair = typeof m === 'string' ? m.split(' ') : m;
      if (pair.length !== 2) throw new FormatError(source, `merge ${i} is not a pair: ${JSON.stringify(m)}`);
      return pair as [string, string];
    });
    const vocab = new Map(Object.entries(doc.model.vocab));
    const added = new Map((doc.added_tokens ?? []).filter((t) => !vocab.has(t.content) || vocab.get(t.content) === t.id).map((t) => [t.content, t.id]));
    for (const [t] of added) vocab.delete(t);
    const fallback = [...added.keys()].find((t) => t === '<|endoftext|>') ?? [...added.keys()][0];
    const names = { ...doc.skd?.special, ...special };
    const eos = names.eos ?? fallback;
    if (!eos) throw new FormatError(source, 'no EOS token: the tokenizer has no added tokens; pass special: { eos, pad }');
    return new BpeTokenizer(vocab, merges, added, { eos, pad: names.pad ?? eos, ...(names.bos ? { bos: names.bos } : {}) });
  }

  /**
   * Learns merges from a corpus: start from the 256 byte symbols, repeatedly merge the most frequent
   * adjacent pair (ties: lexicographically smallest, so training is deterministic).
   */
  static train(corpus: Iterable<string>, options: BpeTrainOptions): BpeTokenizer {
    const special = options.special ?? { pad: '<|pad|>', eos: '<|eos|>', bos: '<|bos|>' };
    const specialList = [...new Set([special.pad, special.eos, special.bos].filter((s): s is string => !!s))];
    const minFrequency = options.minFrequency ?? 2;
    if (options.vocabSize < 256 + specialList.length) {
      throw new SkdError(`BPE vocabSize must be at least ${256 + specialList.length} (bytes plus special tokens), got ${options.vocabSize}`);
    }
    const words = new Map<string, number>();
    for (const text of corpus) for (const m of text.matchAll(PRETOKEN)) words.set(m[0], (words.get(m[0]) ?? 0) + 1);
    const entries = [...words].map(([w, count]) => ({ symbols: Array.from(encoder.encode(w), (b) => ALPHABET.toChar[b] as string), count }));
    const vocab = new Map<string, number>(ALPHABET.toChar.map((c, i) => [c, i]));
    const merges: [string, string][] = [];
    while (vocab.size + specialList.length < options.vocabSize) {
      const pairs = new Map<string, number>();
      for (const { symbols, count } of entries) {
        for (let i = 0; i + 1 < symbols.length; i++) {
          const key = `${symbols[i]} ${symbols[i + 1]}`;
          pairs.set(key, (pairs.get(key) ?? 0) + count);
        }
      }
      let bestKey: string | undefined;
      let bestCount = 0;
      for (const [key, count] of pairs) {
        if (count > bestCount || (count === bestCount && bestKey !== undefined && key < bestKey)) {
          bestKey = key;
          bestCount = count;
        }
      }
      if (!bestKey || bestCount < minFrequency) break;
      const [a, b] = bestKey.split(' ') as [string, string];
      merges.push([a, b]);
      vocab.set(a + b, vocab.size);
      for (const entry of entries) {
        const next: string[] = [];
        for (let i = 0; i < entry.symbols.length; i++) {
          if (i + 1 < entry.symbols.length && entry.symbols[i] === a && entry.symbols[i + 1] === b) {
            next.push(a + b);
            i++;
          } else next.push(entry.symbols[i] as string);
        }
        entry.symbols = next;
      }
    }
    const added = new Map(specialList.map((s, i) => [s, vocab.size + i]));
    return new BpeTokenizer(vocab, merges, added, special);
  }
}
