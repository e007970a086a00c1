/** Special token ids a tokenizer defines. `pad` may equal `eos`; losses keep EOS either way. */
export interface SpecialTokens {
  readonly pad: number;
  readonly eos: number;
  readonly bos?: number;
  readonly unk?: number;
  /**
   * Ids besides `eos` that end generation (a chat model's end-of-turn, generation_config.json's
   * `eos_token_id` list). Training sequences still end with `eos`.
   */
  readonly stop?: readonly number[];
}

/** Whether `token` ends a generated row: EOS or one of the extra stop ids. */
export function endsGeneration(token: number, eos: number, stop?: readonly number[]): boolean {
  return token === eos || (stop !== undefined && stop.includes(token));
}

/** One message of a conversation, as chat templates take it. */
export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface ChatOptions {
  /** End with the template's cue for the assistant's turn (a prompt to generate from). */
  readonly addGenerationPrompt: boolean;
}

export interface Tokenizer {
  /** Registry kind, e.g. "bytes" or "bpe". */
  readonly kind: string;
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  /** Digest of the vocabulary (see `VocabularyInfo.fingerprint`). */
  readonly fingerprint: string;

  encode(text: string): number[];
  /** Special tokens are dropped unless `keepSpecial` is set. */
  decode(ids: readonly number[], options?: { readonly keepSpecial?: boolean }): string;
  /** A JSON document from which the same tokenizer can be rebuilt. */
  toJSON(): unknown;
  /** Renders a conversation with the tokenizer's chat template (tokenizers that have one). */
  renderChat?(messages: readonly ChatMessage[], options: ChatOptions): string;
}

/** A prompt's ids: BOS (when the tokenizer has one) and the text's ids. A text that already starts with BOS (a chat template wrote it) gets no second one. */
export function encodePrompt(tokenizer: Tokenizer, text: string, addBos = true): number[] {
  const ids = tokenizer.encode(text);
  const bos = tokenizer.special.bos;
  return addBos && bos !== undefined && ids[0] !== bos ? [bos, ...ids] : ids;
}

const stopIdCache = new WeakMap<Tokenizer, Map<string, readonly number[]>>();

/**
 * The ids at which generation may end for a dataset with `stopStrings`: the tokenizer's own
 * (`special.stop`) and every token whose text contains one of the strings. A response that reaches
 * such a token already holds the stop string, and is cut before it (`cutAtStopStrings`), so what
 * it would generate after that token is never trained on or scored: ending there saves the rest of
 * the budget and changes no cut text (only the random stream, which the cut rows stop drawing from).
 * A stop string split over several tokens still ends no row early; the cut catches it. Undefined
 * when nothing but EOS ends generation. Computed once per tokenizer and set of strings.
 */
export function generationStops(tokenizer: Tokenizer, stopStrings: readonly string[] | undefined): readonly number[] | undefined {
  const own = tokenizer.special.stop ?? [];
  const strings = (stopStrings ?? []).filter((s) => s !== '');
  if (strings.length === 0) return own.length ? own : undefined;
  let byStrings = stopIdCache.get(tokenizer);
  if (!byStrings) stopIdCache.set(tokenizer, (byStrings = new Map()));
  const key = JSON.stringify(strings);
  let ids = byStrings.get(key);
  if (!ids) {
    const found = new Set(own);
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      if (id === tokenizer.special.eos || found.has(id)) continue;
      const text = tokenizer.decode([id]);
      if (strings.some((s) => text.includes(s))) found.add(id);
    }
    ids = [...found].sort((a, b) => a - b);
    byStrings.set(key, ids);
  }
  return ids.length ? ids : undefined;
}

/** Where the first of `stop` begins in `text` (the earliest occurrence of any), or -1. */
export function stopStringAt(text: string, stop: readonly string[] | undefined): number {
  let first = -1;
  for (const s of stop ?? []) {
    if (s === '') continue;
    const at = text.indexOf(s);
    if (at !== -1 && (first === -1 || at < first)) first = at;
  }
  return first;
}

/**
 * A generated response cut before the first stop string of its text: the text before it, encoded,
 * then the token that ended the response (EOS, or a chat model's end of turn), or EOS when the
 * response ran out of budget instead. Undefined when no stop string occurs (the response stays as
 * generated).
 */
export function cutAtStopStrings(tokenizer: Tokenizer, response: readonly number[], stop: readonly string[] | undefined): number[] | undefined {
  if (!stop?.length) return undefined;
  const text = tokenizer.decode(response);
  const at = stopStringAt(text, stop);
  if (at === -1) return undefined;
  const { eos, stop: stopIds } = tokenizer.special;
  const last = response[response.length - 1];
  return [...tokenizer.encode(text.slice(0, at)), last !== undefined && endsGeneration(last, eos, stopIds) ? last : eos];
}

/** A training response's ids: the text's ids and EOS, unless the text already ends with a stop id (a chat template's end of turn). */
export function encodeResponse(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text);
  const last = ids[ids.length - 1];
  return last !== undefined && endsGeneration(last, tokenizer.special.eos, tokenizer.special.stop) ? ids : [...ids, tokenizer.special.eos];
}
