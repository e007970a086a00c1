import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, SkdError, type ChatMessage, type ChatOptions, type SpecialTokens, type Tokenizer } from '@skd/core';
import { BpeModel } from './bpe-model';
import { ChatTemplate } from './chat-template';
import {
  decoderFrom,
  framingFrom,
  normalizerFrom,
  preTokenizerFrom,
  type Decoder,
  type Framing,
  type Normalizer,
  type Piece,
  type PreTokenizer,
} from './pipeline';

/** The files of a Hugging Face tokenizer, as JSON documents. */
export interface HfTokenizerFiles {
  /** tokenizer.json */
  readonly tokenizer: unknown;
  /** tokenizer_config.json (special tokens, add_bos_token, chat_template, tokenizer_class) */
  readonly config?: unknown;
  /** generation_config.json (eos_token_id: the ids that end generation) */
  readonly generation?: unknown;
}

interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly singleWord: boolean;
}

type Json = Record<string, unknown>;

const QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * The pipeline stages transformers 5 builds itself for some tokenizer classes (its LlamaTokenizer,
 * GemmaTokenizer, Qwen2Tokenizer and GPT2Tokenizer take only the vocabulary and merges from
 * tokenizer.json), so that ids here equal `AutoTokenizer`'s for the same folder.
 */
function classStages(tokenizerClass: string | undefined, config: Json): Partial<Record<'normalizer' | 'pre_tokenizer' | 'decoder', Json | null>> | undefined {
  const name = tokenizerClass?.replace(/Fast$/, '');
  switch (name) {
    case 'LlamaTokenizer':
    case 'CodeLlamaTokenizer': {
      const prefix = config['add_prefix_space'] !== false;
      const scheme = !prefix ? 'never' : config['legacy'] === true ? 'always' : 'first';
      const decoders: Json[] = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
      if (prefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
      return {
        normalizer: null,
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: false },
        decoder: { type: 'Sequence', decoders },
      };
    }
    case 'GemmaTokenizer':
      return {
        normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false },
        decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
      };
    case 'Qwen2Tokenizer':
      return {
        normalizer: { type: 'NFC' },
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: QWEN2_PATTERN }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: config['add_prefix_space'] === true, use_regex: false },
          ],
        },
        decoder: { type: 'ByteLevel' },
      };
    case 'GPT2Tokenizer':
      return { pre_tokenizer: { type: 'ByteLevel', add_prefix_space: config['add_prefix_space'] === true, use_regex: true }, decoder: { type: 'ByteLevel' } };
    default:
      return undefined;
  }
}

/** A special token field of tokenizer_config.json: a string, an AddedToken object, or null. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json)['content'] === 'string') return (value as Json)['content'] as string;
  return undefined;
}

/**
 * A Hugging Face tokenizer read from its files: the BPE model of any tokenizer.json (byte-level as
 * GPT-2, Llama 3 and Qwen; SentencePiece-style with byte fallback as Llama 2 and Gemma) with its
 * normalizer, pre-tokenizer, post-processor and decoder; the special tokens and add_bos_token of
 * tokenizer_config.json; the chat template; and generation_config.json's stop ids. Ids equal
 * transformers' `AutoTokenizer` for the same folder (tested).
 *
 * `encode` returns the text's ids alone; `special.bos` is defined when the tokenizer frames a
 * sequence with BOS (skd's datasets then put it before each prompt, as `tokenizer(text)` does).
 */
export class HfTokenizer implements Tokenizer {
  static readonly kind = 'hf';
  readonly kind = HfTokenizer.kind;
  readonly special: SpecialTokens;
  readonly fingerprint: string;
  readonly vocabSize: number;
  /** The Jinja chat template of tokenizer_config.json, if any. */
  readonly chatTemplate: string | undefined;
  /** The special ids `tokenizer(text)` puts before and after a sequence. */
  readonly framing: Framing;
  /** The named special tokens (bos_token, eos_token, ...) as strings, for chat templates. */
  readonly specialNames: Readonly<Record<string, string>>;
  private readonly model: BpeModel;
  private readonly normalizer: Normalizer | undefined;
  private readonly preTokenizer: PreTokenizer | undefined;
  private readonly decoder: Decoder | undefined;
  private readonly idToToken: string[] = [];
  private readonly specialIds = new Set<number>();
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedPattern: RegExp | undefined;
  private readonly addedByContent = new Map<string, AddedToken>();
  private template: ChatTemplate | undefined;

  constructor(
    readonly files: HfTokenizerFiles,
    source = 'tokenizer.json',
  ) {
    const doc = files.tokenizer as Json;
    const config = (files.config ?? {}) as Json;
    if (!doc || typeof doc !== 'object') throw new FormatError(source, 'not a JSON object');
    const model = doc['model'] as Json | undefined;
    if (!model || model['type'] !== 'BPE') {
      throw new FormatError(
        source,
        `model.type: ${JSON.stringify(model?.['type'])} is not supported; skd reads BPE tokenizers (GPT-2, Llama, Qwen, Gemma, Mistral families)`,
      );
    }
    for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      if (typeof model[field] === 'string' && model[field] !== '')
        throw new FormatError(source, `model.${field}: ${JSON.stringify(model[field])} is not supported`);
    }
    if (model['dropout'] !== null && model['dropout'] !== undefined && model['dropout'] !== 0)
      throw new FormatError(source, `model.dropout: ${model['dropout']} is not supported (BPE dropout is a training-time augmentation)`);
    const vocabField = model['vocab'];
    if (!vocabField || typeof vocabField !== 'object' || Array.isArray(vocabField))
      throw new FormatError(source, 'model.vocab: expected an object of token → id');
    const vocab = new Map<string, number>(Object.entries(vocabField as Record<string, number>));
    const merges = ((model['merges'] as unknown[]) ?? []).map((m, i) => {
      const pair = typeof m === 'string' ? splitMerge(m) : (m as string[]);
      if (!Array.isArray(pair) || pair.length !== 2) throw new FormatError(source, `model.merges.${i}: ${JSON.stringify(m)} is not a pair`);
      return [pair[0], pair[1]] as [string, string];
    });
    // Added tokens: tokenizer.json's list, then tokenizer_config.json's added_tokens_decoder (as transformers merges them).
    const added = new Map<number, AddedToken>();
    const addToken = (id: number, t: Json) =>
      added.set(id, {
        id,
        content: String(t['content']),
        special: t['special'] === true,
        lstrip: t['lstrip'] === true,
        rstrip: t['rstrip'] === true,
        singleWord: t['single_word'] === true,
      });
    for (const t of (doc['added_tokens'] as Json[] | undefined) ?? []) addToken(Number(t['id']), t);
    for (const [id, t] of Object.entries((config['added_tokens_decoder'] as Record<string, Json> | undefined) ?? {})) addToken(Number(id), t);
    for (const t of added.values()) vocab.set(t.content, t.id);
    for (const [token, id] of vocab) this.idToToken[id] = token;
    this.vocabSize = this.idToToken.length;
    const tokenClass = typeof config['tokenizer_class'] === 'string' ? (config['tokenizer_class'] as string) : undefined;
    const rebuilt = classStages(tokenClass, config);
    const stage = (name: 'normalizer' | 'pre_tokenizer' | 'decoder') => (rebuilt && name in rebuilt ? rebuilt[name] : (doc[name] as Json | null | undefined));
    this.normalizer = normalizerFrom(stage('normalizer'), source);
    this.preTokenizer = preTokenizerFrom(stage('pre_tokenizer'), source);
    this.decoder = decoderFrom(stage('decoder'), source);
    const rebuiltModel = tokenClass && ['LlamaTokenizer', 'GemmaTokenizer', 'CodeLlamaTokenizer'].includes(tokenClass.replace(/Fast$/, ''));
    const unk = tokenName(model['unk_token']) ?? (rebuiltModel ? tokenName(config['unk_token']) : undefined);
    this.model = new BpeModel(
      vocab,
      merges,
      {
        byteFallback: rebuiltModel ? true : model['byte_fallback'] === true,
        unk: unk !== undefined && vocab.has(unk) ? unk : undefined,
        fuseUnk: rebuiltModel ? true : model['fuse_unk'] === true,
        ignoreMerges: model['ignore_merges'] === true,
      },
      source,
    );
    // Named special tokens: config first (what transformers uses), then each is an added token.
    const names: Record<string, string> = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const name = tokenName(config[key]);
      if (name !== undefined) names[key] = name;
    }
    this.specialNames = names;
    const idOf = (name: string | undefined, field: string): number | undefined => {
      if (name === undefined) return undefined;
      const id = vocab.get(name);
      if (id === undefined) throw new FormatError(source, `tokenizer_config.json ${field} ${JSON.stringify(name)} is not in the vocabulary`);
      return id;
    };
    // transformers registers every named special token as a special added token.
    for (const [key, name] of Object.entries(names)) {
      const id = idOf(name, key) as number;
      if (!added.has(id)) added.set(id, { id, content: name, special: true, lstrip: false, rstrip: false, singleWord: false });
    }
    for (const t of added.values()) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      if (t.special) this.specialIds.add(t.id);
    }
    const escaped = [...added.values()]
      .map((t) => t.content)
      .sort((a, b) => b.length - a.length)
      .map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedPattern = escaped.length ? new RegExp(escaped.join('|'), 'gu') : undefined;
    // Framing: add_bos_token / add_eos_token in the config replace the file's post-processor (transformers 5).
    const explicit = 'add_bos_token' in config || 'add_eos_token' in config;
    const bosId = idOf(names['bos_token'], 'bos_token');
    const eosFromConfig = idOf(names['eos_token'], 'eos_token');
    this.framing = explicit
      ? {
          prefix: config['add_bos_token'] === true && bosId !== undefined ? [bosId] : [],
          suffix: config['add_eos_token'] === true && eosFromConfig !== undefined ? [eosFromConfig] : [],
        }
      : framingFrom(doc['post_processor'] as Json | null | undefined, source);
    // Stop ids: generation_config.json's eos_token_id (a number or a list), else the config's eos_token.
    const generationEos = (files.generation as Json | undefined)?.['eos_token_id'];
    const stopIds = (Array.isArray(generationEos) ? generationEos : typeof generationEos === 'number' ? [generationEos] : []).filter(
      (x): x is number => typeof x === 'number',
    );
    const eos = eosFromConfig ?? stopIds[0];
    if (eos === undefined)
      throw new FormatError(source, 'no EOS token: tokenizer_config.json has no eos_token and generation_config.json no eos_token_id', {
        hint: 'add "eos_token" to tokenizer_config.json',
      });
    const pad = idOf(names['pad_token'], 'pad_token') ?? eos;
    const bos = this.framing.prefix.length === 1 ? this.framing.prefix[0] : undefined;
    const unkId = idOf(names['unk_token'], 'unk_token');
    const stop = stopIds.filter((id) => id !== eos);
    this.special = { pad, eos, ...(bos !== undefined ? { bos } : {}), ...(unkId !== undefined ? { unk: unkId } : {}), ...(stop.length ? { stop } : {}) };
    const template = config['chat_template'];
    this.chatTemplate =
      typeof template === 'string'
        ? template
        : Array.isArray(template)
          ? ((template as Json[]).find((t) => t['name'] === 'default')?.['template'] as string | undefined)
          : undefined;
    // What decides the ids: the files' pipeline as built here, the vocabulary, merges and added tokens.
    const identity = JSON.stringify([
      [...vocab].sort((a, b) => a[1] - b[1]),
      merges,
      [...added.values()].sort((a, b) => a.id - b.id),
      stage('normalizer'),
      stage('pre_tokenizer'),
      this.framing,
      model['ignore_merges'] === true,
      model['byte_fallback'] === true || !!rebuiltModel,
    ]);
    this.fingerprint = `hf:${createHash('sha256').update(identity).digest('hex').slice(0, 16)}`;
  }

  /** Reads tokenizer.json, and tokenizer_config.json and generation_config.json where they exist, from a folder. */
  static fromFolder(dir: string): HfTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) {
      const resave = 'save it with transformers (AutoTokenizer.from_pretrained(...).save_pretrained(dir)) to write tokenizer.json';
      const tekken = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).find((name) => name.includes('tekken') && name.endsWith('.json'));
      const hint = fs.existsSync(path.join(dir, 'tokenizer.model'))
        ? `this folder has only a SentencePiece tokenizer.model; ${resave}`
        : tekken
          ? `this folder has only Mistral's ${tekken}; ${resave} (a tekken.json converted so adds no BOS, where the hub's tokenizer.json files add <s>: check which your model expects)`
          : 'point at a folder with tokenizer.json';
      throw new FormatError(dir, 'tokenizer.json is missing', { hint });
    }
    const read = (name: string): unknown => {
      const f = path.join(dir, name);
      if (!fs.existsSync(f)) return undefined;
      try {
        return JSON.parse(fs.readFileSync(f, 'utf8'));
      } catch (cause) {
        throw new FormatError(f, `not valid JSON: ${(cause as Error).message}`, { cause });
      }
    };
    const files = { tokenizer: read('tokenizer.json'), config: read('tokenizer_config.json'), generation: read('generation_config.json') };
    return new HfTokenizer(files, file);
  }

  /** The ids of `text` alone: no BOS or EOS framing. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const segment of this.segments(text)) {
      if (typeof segment === 'number') {
        ids.push(segment);
        continue;
      }
      const normalized = this.normalizer ? this.normalizer(segment.text) : segment.text;
      if (!normalized) continue;
      const pieces = this.preTokenizer ? this.preTokenizer([{ text: normalized, first: segment.first }]) : [{ text: normalized, first: segment.first }];
      for (const piece of pieces) if (piece.text) ids.push(...this.model.tokenize(piece.text));
    }
    return ids;
  }

  /** The ids transformers' `tokenizer(text)` gives: `encode(text)` framed by the post-processor's special tokens. */
  encodeWithSpecialTokens(text: string): number[] {
    return [...this.framing.prefix, ...this.encode(text), ...this.framing.suffix];
  }

  decode(ids: readonly number[], options: { readonly keepSpecial?: boolean } = {}): string {
    const tokens: string[] = [];
    let out = '';
    const flush = () => {
      if (!tokens.length) return;
      out += (this.decoder ? this.decoder(tokens) : tokens).join('');
      tokens.length = 0;
    };
    for (const id of ids) {
      const token = this.idToToken[id];
      if (token === undefined) throw new FormatError('tokenizer', `token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      const added = this.addedById.get(id);
      if (added) {
        if (added.special && !options.keepSpecial) continue;
        // Added tokens are not byte-level symbols: written as they are, between decoded runs.
        flush();
        out += added.content;
        continue;
      }
      tokens.push(token);
    }
    flush();
    return out;
  }

  toJSON(): unknown {
    return { kind: HfTokenizer.kind, ...this.files };
  }

  /** A conversation rendered with tokenizer_config.json's chat template, as transformers' apply_chat_template(tokenize=False). */
  renderChat(messages: readonly ChatMessage[], options: ChatOptions): string {
    if (this.chatTemplate === undefined)
      throw new SkdError('this tokenizer has no chat template (tokenizer_config.json has no chat_template)', {
        hint: 'use a prompt template instead of "chat", or a model whose tokenizer has a chat template',
      });
    this.template ??= new ChatTemplate(this.chatTemplate, this.specialNames);
    return this.template.render(messages, options.addGenerationPrompt);
  }

  /** Splits text into added tokens (their ids) and the text between them, as transformers does before normalizing. */
  private segments(text: string): (number | Piece)[] {
    if (!this.addedPattern) return [{ text, first: true }];
    const out: (number | Piece)[] = [];
    let at = 0;
    let pendingStrip = false;
    const pushText = (from: number, to: number) => {
      let piece = text.slice(from, to);
      if (pendingStrip) piece = piece.replace(/^\s+/u, '');
      pendingStrip = false;
      if (piece) out.push({ text: piece, first: from === 0 });
    };
    for (const m of text.matchAll(this.addedPattern)) {
      const token = this.addedByContent.get(m[0]) as AddedToken;
      const start = m.index;
      const end = start + m[0].length;
      if (token.singleWord && (/[\p{L}\p{N}_]/u.test(text[start - 1] ?? '') || /[\p{L}\p{N}_]/u.test(text[end] ?? ''))) continue;
      if (start < at) continue;
      let before = text.slice(at, start);
      if (token.lstrip) before = before.replace(/\s+$/u, '');
      pushText(at, at + before.length);
      out.push(token.id);
      at = end;
      if (token.rstrip) pendingStrip = true;
    }
    pushText(at, text.length);
    return out;
  }
}

/** A merge written as one string: "a b" (tokens never contain the separating space here). */
function splitMerge(merge: string): string[] {
  const i = merge.indexOf(' ', 1);
  return i < 0 ? [merge] : [merge.slice(0, i), merge.slice(i + 1)];
}
