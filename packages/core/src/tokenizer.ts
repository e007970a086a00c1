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
}
