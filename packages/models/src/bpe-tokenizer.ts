import { createHash } from 'node:crypto';
import { FormatError, SkdError, type SpecialTokens, type Tokenizer } from '@skd/core';
import { z } from 'zod';

/**
 * Byte-level BPE (the GPT-2 family's scheme): text splits into pre-tokens by a regex, each
 * pre-token's UTF-8 bytes map to printable characters, and learned merges join adjacent symbols by
 * rank. Optionally every digit is a pre-token of its own (arithmetic reads numbers digit by digit).
 * Reads and writes Hugging Face `tokenizer.json` (model type BPE, ByteLevel pre-tokenizer, or the
 * Sequence of Digits and ByteLevel) with the roles of the special tokens in `tokenizer_config.json`,
 * so files go both ways between skd and Hugging Face's tokenizers; trains on a corpus.
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

/** How text splits into pre-tokens before merges. */
export interface BpePreTokenizer {
  /** Every digit its own pre-token (Hugging Face's Digits pre-tokenizer, individual digits). */
  readonly splitDigits: boolean;
}

/** The `tokenizer_config.json` beside a `tokenizer.json`: which added tokens are EOS, padding, BOS. */
export interface BpeTokenizerConfig {
  readonly tokenizer_class: string;
  readonly eos_token: string;
  readonly pad_token: string;
  readonly bos_token?: string;
}

export interface BpeTrainOptions {
  /** Final vocabulary size, byte alphabet and special tokens included. */
  readonly vocabSize: number;
  /** Special token strings, appended after the merges. */
  readonly special?: BpeSpecialNames;
  /** Ignore pairs seen fewer times (default 2). */
  readonly minFrequency?: number;
  /** Split every digit into its own pre-token (default false). */
  readonly splitDigits?: boolean;
}

const DIGIT = /(\p{N})/u;

/** The parts of a Hugging Face tokenizer.json that skd reads; anything else in the file is left alone. */
const tokenizerDocSchema = z.object({
  model: z.object({
    type: z.literal('BPE'),
    vocab: z.record(z.string(), z.number().int().nonnegative()),
    merges: z.array(z.union([z.string(), z.array(z.string())])),
  }),
  pre_tokenizer: z
    .object({ type: z.string(), pretokenizers: z.array(z.object({ type: z.string(), individual_digits: z.boolean().optional() })).optional() })
    .nullable()
    .optional(),
  added_tokens: z.array(z.object({ id: z.number().int().nonnegative(), content: z.string() })).optional(),
  skd: z.object({ special: z.object({ eos: z.string(), pad: z.string(), bos: z.string().optional() }).optional() }).optional(),
});

/** Pre-tokens of a text: the GPT-2 regex over the text, or over each run between digits and each digit. */
function* preTokens(text: string, splitDigits: boolean): Generator<string> {
  const pieces = splitDigits ? text.split(DIGIT) : [text];
  for (const piece of pieces) {
    if (piece === '') continue;
    for (const match of piece.matchAll(PRETOKEN)) yield match[0];
  }
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
  /** Added tokens are matched in text before pre-tokenization, longest first (as Hugging Face does). */
  private readonly addedPattern: RegExp | undefined;

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly merges: readonly [string, string][],
    private readonly addedTokens: ReadonlyMap<string, number>,
    names: BpeSpecialNames,
    readonly preTokenizer: BpePreTokenizer = { splitDigits: false },
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
    const eos = idOf(names.eos, 'eos') as number;
    this.special = { pad: idOf(names.pad, 'pad') as number, eos, ...(names.bos ? { bos: idOf(names.bos, 'bos') as number } : {}) };
    this.specialIds = new Set(addedTokens.values());
    const escaped = [...addedTokens.keys()].sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedPattern = escaped.length ? new RegExp(`(${escaped.join('|')})`) : undefined;
    // The pre-tokenizer changes which ids a text gets, so it is part of the identity (old files hash as before).
    const identity = [[...vocab].sort(), merges, [...addedTokens].sort(), ...(preTokenizer.splitDigits ? ['digits'] : [])];
    this.fingerprint = `bpe:${createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    const segments = this.addedPattern ? text.split(this.addedPattern) : [text];
    segments.forEach((segment, i) => {
      if (i % 2 === 1) {
        ids.push(this.addedTokens.get(segment) as number); // an added token written in the text
        return;
      }
      for (const piece of preTokens(segment, this.preTokenizer.splitDigits)) {
        let cached = this.cache.get(piece);
        if (!cached) {
          cached = this.encodePiece(piece);
          if (this.cache.size < 100_000) this.cache.set(piece, cached);
        }
        ids.push(...cached);
      }
    });
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
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...this.addedTokens].map(([content, id]) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: this.preTokenizer.splitDigits ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel] } : byteLevel,
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
    };
  }

  /** The `tokenizer_config.json` that goes beside `toJSON()`: the roles of the special tokens. */
  tokenizerConfig(): BpeTokenizerConfig {
    const name = (id: number) => this.idToToken[id] as string;
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: name(this.special.eos),
      pad_token: name(this.special.pad),
      ...(this.special.bos !== undefined ? { bos_token: name(this.special.bos) } : {}),
    };
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

  /**
   * Reads a Hugging Face `tokenizer.json` (byte-level BPE). The roles of the special tokens come from
   * `special`, else from its `tokenizer_config.json` (`config`), else from the `skd.special` key
   * older skd files carry, else <|endoftext|> or the first added token is EOS and padding.
   */
  static fromJSON(json: unknown, source = 'tokenizer.json', special?: Partial<BpeSpecialNames>, config?: Partial<BpeTokenizerConfig>): BpeTokenizer {
    const type = (json as { model?: { type?: unknown } } | null)?.model?.type;
    if (type !== 'BPE') {
      throw new FormatError(source, `unsupported tokenizer: model type ${JSON.stringify(type)}; skd reads byte-level BPE (GPT-2 style) tokenizer.json files`);
    }
    const parsed = tokenizerDocSchema.safeParse(json);
    if (!parsed.success) {
      throw new FormatError(
        source,
        `not a BPE tokenizer.json skd can read: ${parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
          .join('; ')}`,
      );
    }
    const doc = parsed.data;
    const pre = doc.pre_tokenizer;
    const parts =
      pre?.type === 'Sequence'
        ? (pre.pretokenizers ?? []).map((p) => `${p.type}${p.type === 'Digits' ? `(individual_digits: ${p.individual_digits})` : ''}`)
        : [pre?.type ?? 'null'];
    const splitDigits = parts.join() === 'Digits(individual_digits: true),ByteLevel';
    if (parts.join() !== 'ByteLevel' && !splitDigits) {
      throw new FormatError(
        source,
        `unsupported pre_tokenizer ${parts.join(' + ')}; skd reads byte-level BPE (pre_tokenizer "ByteLevel", or a Sequence of Digits with individual digits and ByteLevel)`,
      );
    }
    const merges = doc.model.merges.map((m, i) => {
      const pair: string[] = typeof m === 'string' ? m.split(' ') : m;
      if (pair.length !== 2) throw new FormatError(source, `merge ${i} is not a pair: ${JSON.stringify(m)}`);
      return pair as [string, string];
    });
    const vocab = new Map(Object.entries(doc.model.vocab));
    const added = new Map((doc.added_tokens ?? []).filter((t) => !vocab.has(t.content) || vocab.get(t.content) === t.id).map((t) => [t.content, t.id]));
    for (const [t] of added) vocab.delete(t);
    const fallback = [...added.keys()].find((t) => t === '<|endoftext|>') ?? [...added.keys()][0];
    const fromConfig = config ? { eos: config.eos_token, pad: config.pad_token, bos: config.bos_token } : {};
    const defined = (o: Record<string, string | undefined>) =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<BpeSpecialNames>;
    const names = { ...doc.skd?.special, ...defined(fromConfig), ...defined({ ...special }) };
    const eos = names.eos ?? fallback;
    if (!eos) throw new FormatError(source, 'no EOS token: the tokenizer has no added tokens; pass special: { eos, pad }');
    return new BpeTokenizer(vocab, merges, added, { eos, pad: names.pad ?? eos, ...(names.bos ? { bos: names.bos } : {}) }, { splitDigits });
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
    const splitDigits = options.splitDigits ?? false;
    const words = new Map<string, number>();
    for (const text of corpus) for (const piece of preTokens(text, splitDigits)) words.set(piece, (words.get(piece) ?? 0) + 1);
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
    return new BpeTokenizer(vocab, merges, added, special, { splitDigits });
  }
}
