import { SkdError, encodePrompt, encodeResponse, endsGeneration, type ByteSpan, type Tokenizer, type TokenVocabularies } from '@skd/core';

const utf8 = new TextEncoder();
const byteLength = (text: string): number => utf8.encode(text).length;

/** Characters (UTF-16 units) that `a` and `b` share from their start. */
function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/**
 * Each token's byte span in `tokenizer.decode(ids)`, whatever the tokenizer's decoder does (byte-level
 * symbols, a sentencepiece space marker, a stripped leading space): token k ends where the decoding of
 * the first k + 1 tokens stops agreeing with the decoding of all of them. A token holding only part of
 * a character ends where the character's whole bytes are first decoded (the token that completes it
 * covers it); a special token, decoded to nothing, covers no bytes. Spans are contiguous and ordered.
 */
export function byteSpans(tokenizer: Tokenizer, ids: readonly number[]): ByteSpan[] {
  const full = tokenizer.decode(ids);
  const spans: ByteSpan[] = [];
  let start = 0;
  let chars = 0;
  for (let k = 0; k < ids.length; k++) {
    const prefix = k === ids.length - 1 ? full : tokenizer.decode(ids.slice(0, k + 1));
    // Past a character the prefix cuts in half, its decoding holds a replacement character that the full text does not.
    const agreed = Math.max(chars, commonPrefix(prefix, full));
    const end = agreed === chars ? start : start + byteLength(full.slice(chars, agreed));
    spans.push([start, end]);
    [start, chars] = [end, agreed];
  }
  return spans;
}

/** One response on both sides of a teacher that reads another tokenizer. */
export interface BridgedResponse {
  /** The response's text (special tokens dropped), which both token sequences decode to. */
  readonly text: string;
  /** Whether the student's response ended (EOS or a stop id): both sides then end with an end token. */
  readonly ended: boolean;
  /** The teacher's tokens of the text, ending with the teacher's EOS when the student's response ended. */
  readonly teacherTokens: number[];
  readonly studentSpans: ByteSpan[];
  readonly teacherSpans: ByteSpan[];
}

/**
 * Carries sequences between a student's tokenizer and a teacher's other one, through text: the
 * student's prompt ids decoded (its special tokens kept, as a chat template wrote them) and encoded
 * by the teacher, a response decoded and encoded with byte spans on both sides, and a teacher's
 * response carried back. Every vocabulary's token texts are read once, when first asked for.
 */
export class TokenizerBridge {
  private texts: { student: Map<string, number>; teacher: Map<string, number> } | undefined;

  constructor(
    readonly student: Tokenizer,
    readonly teacher: Tokenizer,
  ) {}

  /** The teacher's prompt ids for a student prompt: its text, with the teacher's BOS when it has one. */
  teacherPrompt(studentPrompt: readonly number[]): number[] {
    return encodePrompt(this.teacher, this.student.decode(withoutBos(this.student, studentPrompt), { keepSpecial: true }));
  }

  /**
   * A student response on the teacher's side: the text's teacher tokens and both sides' byte spans.
   * A response that ended (EOS, or a stop id) ends on the teacher's side with the teacher's EOS; the
   * end tokens cover no bytes, at the text's end.
   */
  teacherResponse(studentResponse: readonly number[]): BridgedResponse {
    const ended = endsResponse(this.student, studentResponse);
    const body = ended ? studentResponse.slice(0, -1) : [...studentResponse];
    const text = this.student.decode(body);
    const teacherBody = this.teacher.encode(text);
    const end = byteLength(text);
    const endSpan = (spans: ByteSpan[]) => (ended ? [...spans, [end, end] as const] : spans);
    return {
      text,
      ended,
      teacherTokens: ended ? [...teacherBody, this.teacher.special.eos] : teacherBody,
      studentSpans: endSpan(byteSpans(this.student, body)),
      teacherSpans: endSpan(byteSpans(this.teacher, teacherBody)),
    };
  }

  /** A teacher's response in the student's tokens (its text, then the student's EOS when the teacher's ended). */
  studentResponse(teacherResponse: readonly number[]): number[] {
    const ended = endsResponse(this.teacher, teacherResponse);
    const text = this.teacher.decode(ended ? teacherResponse.slice(0, -1) : teacherResponse);
    return ended ? encodeResponse(this.student, text) : this.student.encode(text);
  }

  /**
   * Each side's vocabulary as token text → id, for matching tokens both vocabularies hold: a token's
   * text is what it decodes to alone. Texts that are empty (special tokens), hold a replacement
   * character (part of a character) or that several ids of one side share are left out: they name
   * no single string.
   */
  vocabularies(): TokenVocabularies {
    this.texts ??= { student: tokenTexts(this.student), teacher: tokenTexts(this.teacher) };
    return this.texts;
  }
}

function withoutBos(tokenizer: Tokenizer, ids: readonly number[]): readonly number[] {
  return tokenizer.special.bos !== undefined && ids[0] === tokenizer.special.bos ? ids.slice(1) : ids;
}

function endsResponse(tokenizer: Tokenizer, ids: readonly number[]): boolean {
  const last = ids[ids.length - 1];
  return last !== undefined && endsGeneration(last, tokenizer.special.eos, tokenizer.special.stop);
}

function tokenTexts(tokenizer: Tokenizer): Map<string, number> {
  const byText = new Map<string, number>();
  const shared = new Set<string>();
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const text = tokenizer.decode([id]);
    if (text === '' || text.includes('\uFFFD')) continue;
    if (byText.has(text)) shared.add(text);
    else byText.set(text, id);
  }
  for (const text of shared) byText.delete(text);
  return byText;
}

const bridges = new WeakMap<Tokenizer, WeakMap<Tokenizer, TokenizerBridge>>();

/**
 * The bridge between two tokenizers (one per pair, so the vocabularies' texts are read once for a
 * run's sampler, trainer and evaluation), or a clear error when they are the same (nothing to carry).
 */
export function tokenizerBridge(student: Tokenizer, teacher: Tokenizer): TokenizerBridge {
  if (student.fingerprint === teacher.fingerprint) {
    throw new SkdError('the teacher tokenizer is the student tokenizer', { hint: 'leave out "teacherTokenizer": the teacher reads the run\'s tokenizer' });
  }
  let byTeacher = bridges.get(student);
  if (!byTeacher) bridges.set(student, (byTeacher = new WeakMap()));
  let bridge = byTeacher.get(teacher);
  if (!bridge) byTeacher.set(teacher, (bridge = new TokenizerBridge(student, teacher)));
  return bridge;
}
