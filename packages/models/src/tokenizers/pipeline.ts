import { FormatError } from '@skd/core';
import { onigurumaToJs } from './oniguruma';

/**
 * The stages of a Hugging Face `tokenizer.json` around its model: normalizer, pre-tokenizer,
 * post-processor and decoder, each built from its JSON spec with the semantics of Hugging Face's
 * tokenizers library. An unsupported stage is a FormatError naming its path in the file.
 */
type Spec = Record<string, unknown> | null | undefined;

const SUPPORTED = {
  normalizer: ['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'Prepend', 'Replace', 'Strip', 'Sequence'],
  pre_tokenizer: ['ByteLevel', 'Split', 'Metaspace', 'Digits', 'Whitespace', 'WhitespaceSplit', 'Punctuation', 'Sequence'],
  decoder: ['ByteLevel', 'Metaspace', 'Replace', 'ByteFallback', 'Fuse', 'Strip', 'Sequence'],
  post_processor: ['TemplateProcessing', 'ByteLevel', 'Sequence'],
};

function unsupported(source: string, where: string, stage: keyof typeof SUPPORTED, type: unknown): never {
  throw new FormatError(source, `${where}.type: ${JSON.stringify(type)} is not supported (supported: ${SUPPORTED[stage].join(', ')})`);
}

/** A `pattern` field: `{ "String": ... }` (literal) or `{ "Regex": ... }` (Oniguruma). */
function patternOf(spec: Record<string, unknown>, source: string, where: string): RegExp {
  const pattern = spec['pattern'] as { String?: string; Regex?: string } | undefined;
  if (pattern?.String !== undefined) return new RegExp(pattern.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  if (pattern?.Regex !== undefined) {
    try {
      return onigurumaToJs(pattern.Regex);
    } catch (cause) {
      throw new FormatError(source, `${where}.pattern.Regex: cannot compile ${JSON.stringify(pattern.Regex)} (${(cause as Error).message})`, { cause });
    }
  }
  throw new FormatError(source, `${where}.pattern: expected { "String": ... } or { "Regex": ... }`);
}

// ---- normalizers ---------------------------------------------------------------------------

export type Normalizer = (text: string) => string;

export function normalizerFrom(spec: Spec, source: string, where = 'normalizer'): Normalizer | undefined {
  if (!spec) return undefined;
  const type = spec['type'];
  switch (type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(type);
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Prepend': {
      const prepend = String(spec['prepend']);
      return (s) => (s.length ? prepend + s : s);
    }
    case 'Replace': {
      const pattern = patternOf(spec, source, where);
      const content = String(spec['content']);
      return (s) => s.replace(pattern, () => content);
    }
    case 'Strip': {
      const left = spec['strip_left'] !== false;
      const right = spec['strip_right'] !== false;
      return (s) => (left && right ? s.trim() : left ? s.trimStart() : right ? s.trimEnd() : s);
    }
    case 'Sequence': {
      const parts = ((spec['normalizers'] as Spec[]) ?? [])
        .map((n, i) => normalizerFrom(n, source, `${where}.normalizers.${i}`))
        .filter((n): n is Normalizer => !!n);
      return (s) => parts.reduce((text, n) => n(text), s);
    }
    default:
      return unsupported(source, where, 'normalizer', type);
  }
}

// ---- pre-tokenizers ------------------------------------------------------------------------

/** A piece of text on its way to the model; `first`: it starts the input (Metaspace's "first" scheme). */
export interface Piece {
  readonly text: string;
  readonly first: boolean;
}

export type PreTokenizer = (pieces: readonly Piece[]) => Piece[];

/** GPT-2's pre-tokenization regex (ByteLevel with use_regex), in Oniguruma syntax. */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible byte → printable character map (printable bytes map to themselves). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : next++));
  return chars;
})();
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8 = new TextEncoder();

/** Each UTF-8 byte of `text` as its byte-level character. */
export function toByteLevel(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b] as string;
  return out;
}

type Behavior = 'removed' | 'isolated' | 'merged_with_previous' | 'merged_with_next' | 'contiguous';

/** Splits `text` around the matches of `pattern` (delimiters), as Hugging Face's SplitDelimiterBehavior. */
export function splitText(text: string, pattern: RegExp, behavior: Behavior, invert = false): string[] {
  const spans: { text: string; match: boolean }[] = [];
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    if (m[0].length === 0) continue;
    const start = m.index;
    if (start > at) spans.push({ text: text.slice(at, start), match: invert });
    spans.push({ text: m[0], match: !invert });
    at = start + m[0].length;
  }
  if (at < text.length) spans.push({ text: text.slice(at), match: invert });
  const out: string[] = [];
  switch (behavior) {
    case 'removed':
      for (const s of spans) if (!s.match) out.push(s.text);
      break;
    case 'isolated':
      for (const s of spans) out.push(s.text);
      break;
    case 'merged_with_previous':
      for (const s of spans) {
        if (s.match && out.length) out[out.length - 1] += s.text;
        else out.push(s.text);
      }
      break;
    case 'merged_with_next': {
      let pending = '';
      for (const s of spans) {
        if (s.match) pending += s.text;
        else {
          out.push(pending + s.text);
          pending = '';
        }
      }
      if (pending) out.push(pending);
      break;
    }
    case 'contiguous':
      spans.forEach((s, i) => {
        if (s.match && spans[i - 1]?.match && out.length) out[out.length - 1] += s.text;
        else out.push(s.text);
      });
      break;
  }
  return out.filter((s) => s.length > 0);
}

const splitEach = (pieces: readonly Piece[], split: (text: string) => string[]): Piece[] =>
  pieces.flatMap((p) => split(p.text).map((text, i) => ({ text, first: p.first && i === 0 })));

export function preTokenizerFrom(spec: Spec, source: string, where = 'pre_tokenizer'): PreTokenizer | undefined {
  if (!spec) return undefined;
  const type = spec['type'];
  switch (type) {
    case 'ByteLevel': {
      const prefix = spec['add_prefix_space'] === true;
      const regex = spec['use_regex'] !== false ? onigurumaToJs(GPT2_PATTERN) : undefined;
      return (pieces) =>
        pieces.flatMap((p) => {
          const text = prefix && !p.text.startsWith(' ') ? ` ${p.text}` : p.text;
          const parts = regex ? splitText(text, regex, 'isolated') : [text];
          return parts.map((part, i) => ({ text: toByteLevel(part), first: p.first && i === 0 }));
        });
    }
    case 'Split': {
      const pattern = patternOf(spec, source, where);
      const behavior = String(spec['behavior'])
        .replace(/([a-z])([A-Z])/g, '$1_$2')
        .toLowerCase() as Behavior;
      if (!['removed', 'isolated', 'merged_with_previous', 'merged_with_next', 'contiguous'].includes(behavior)) {
        throw new FormatError(source, `${where}.behavior: ${JSON.stringify(spec['behavior'])} is not a split behavior`);
      }
      const invert = spec['invert'] === true;
      return (pieces) => splitEach(pieces, (t) => splitText(t, pattern, behavior, invert));
    }
    case 'Metaspace': {
      const replacement = String(spec['replacement'] ?? '▁');
      const scheme = (spec['prepend_scheme'] as string | undefined) ?? (spec['add_prefix_space'] === false ? 'never' : 'always');
      const split = spec['split'] !== false;
      const replacementPattern = new RegExp(replacement.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
      return (pieces) =>
        pieces.flatMap((p) => {
          let text = p.text.replaceAll(' ', replacement);
          if (!text.startsWith(replacement) && (scheme === 'always' || (scheme === 'first' && p.first))) text = replacement + text;
          const parts = split ? splitText(text, replacementPattern, 'merged_with_next') : [text];
          return parts.map((t, i) => ({ text: t, first: p.first && i === 0 }));
        });
    }
    case 'Digits': {
      const pattern = spec['individual_digits'] === true ? /\p{N}/gu : /\p{N}+/gu;
      return (pieces) => splitEach(pieces, (t) => splitText(t, pattern, 'isolated'));
    }
    case 'Whitespace':
      return (pieces) => splitEach(pieces, (t) => Array.from(t.matchAll(/\w+|[^\w\s]+/gu), (m) => m[0]));
    case 'WhitespaceSplit':
      return (pieces) => splitEach(pieces, (t) => t.split(/\s+/u).filter((s) => s.length > 0));
    case 'Punctuation': {
      const behavior = String(spec['behavior'] ?? 'Isolated')
        .replace(/([a-z])([A-Z])/g, '$1_$2')
        .toLowerCase() as Behavior;
      return (pieces) => splitEach(pieces, (t) => splitText(t, /\p{P}/gu, behavior));
    }
    case 'Sequence': {
      const parts = ((spec['pretokenizers'] as Spec[]) ?? [])
        .map((n, i) => preTokenizerFrom(n, source, `${where}.pretokenizers.${i}`))
        .filter((n): n is PreTokenizer => !!n);
      return (pieces) => parts.reduce((ps, pre) => pre(ps), [...pieces]);
    }
    default:
      return unsupported(source, where, 'pre_tokenizer', type);
  }
}

// ---- decoders ------------------------------------------------------------------------------

export type Decoder = (tokens: string[]) => string[];

export function decoderFrom(spec: Spec, source: string, where = 'decoder'): Decoder | undefined {
  if (!spec) return undefined;
  const type = spec['type'];
  switch (type) {
    case 'ByteLevel':
      return (tokens) => {
        const bytes: number[] = [];
        for (const ch of tokens.join('')) {
          const b = CHAR_TO_BYTE.get(ch);
          if (b !== undefined) bytes.push(b);
          else bytes.push(...utf8.encode(ch));
        }
        return [new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(new Uint8Array(bytes))];
      };
    case 'Metaspace': {
      const replacement = String(spec['replacement'] ?? '▁');
      const scheme = (spec['prepend_scheme'] as string | undefined) ?? (spec['add_prefix_space'] === false ? 'never' : 'always');
      return (tokens) =>
        tokens.map((t, i) => {
          const text = t.replaceAll(replacement, ' ');
          return i === 0 && scheme !== 'never' && text.startsWith(' ') ? text.slice(1) : text;
        });
    }
    case 'Replace': {
      const pattern = patternOf(spec, source, where);
      const content = String(spec['content']);
      return (tokens) => tokens.map((t) => t.replace(pattern, () => content));
    }
    case 'ByteFallback':
      return (tokens) => {
        const out: string[] = [];
        let bytes: number[] = [];
        const flush = () => {
          if (!bytes.length) return;
          try {
            out.push(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(new Uint8Array(bytes)));
          } catch {
            out.push(...bytes.map(() => '\uFFFD'));
          }
          bytes = [];
        };
        for (const t of tokens) {
          const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
          if (m) bytes.push(parseInt(m[1] as string, 16));
          else {
            flush();
            out.push(t);
          }
        }
        flush();
        return out;
      };
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = String(spec['content']);
      const start = Number(spec['start'] ?? 0);
      const stop = Number(spec['stop'] ?? 0);
      return (tokens) =>
        tokens.map((t) => {
          let chars = Array.from(t);
          let n = 0;
          while (n < start && chars[0] === content) {
            chars = chars.slice(1);
            n++;
          }
          n = 0;
          while (n < stop && chars[chars.length - 1] === content) {
            chars = chars.slice(0, -1);
            n++;
          }
          return chars.join('');
        });
    }
    case 'Sequence': {
      const parts = ((spec['decoders'] as Spec[]) ?? []).map((n, i) => decoderFrom(n, source, `${where}.decoders.${i}`)).filter((n): n is Decoder => !!n);
      return (tokens) => parts.reduce((ts, d) => d(ts), tokens);
    }
    default:
      return unsupported(source, where, 'decoder', type);
  }
}

// ---- post-processors -----------------------------------------------------------------------

/** The special ids a post-processor puts around a single sequence. */
export interface Framing {
  readonly prefix: readonly number[];
  readonly suffix: readonly number[];
}

export function framingFrom(spec: Spec, source: string, where = 'post_processor'): Framing {
  if (!spec) return { prefix: [], suffix: [] };
  const type = spec['type'];
  switch (type) {
    case 'ByteLevel':
      return { prefix: [], suffix: [] };
    case 'TemplateProcessing': {
      const single = (spec['single'] as Record<string, { id: string }>[] | undefined) ?? [];
      const specials = (spec['special_tokens'] as Record<string, { ids: number[] }> | undefined) ?? {};
      const prefix: number[] = [];
      const suffix: number[] = [];
      let seenSequence = false;
      for (const item of single) {
        if (item['Sequence']) {
          seenSequence = true;
          continue;
        }
        const name = item['SpecialToken']?.id;
        const ids = name !== undefined ? specials[name]?.ids : undefined;
        if (!ids) throw new FormatError(source, `${where}.single: special token ${JSON.stringify(name)} has no ids in special_tokens`);
        (seenSequence ? suffix : prefix).push(...ids);
      }
      return { prefix, suffix };
    }
    case 'Sequence': {
      const parts = ((spec['processors'] as Spec[]) ?? []).map((p, i) => framingFrom(p, source, `${where}.processors.${i}`));
      return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) };
    }
    default:
      return unsupported(source, where, 'post_processor', type);
  }
}
