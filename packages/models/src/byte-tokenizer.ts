import type { SpecialTokens, Tokenizer } from '@skd/core';

/**
 * UTF-8 bytes as tokens 0..255, then three specials. Any text round-trips, every script included
 * (Assamese takes three bytes a character), and no training is needed.
 */
export class ByteTokenizer implements Tokenizer {
  static readonly kind = 'bytes';
  readonly kind = ByteTokenizer.kind;
  readonly vocabSize = 259;
  readonly special: SpecialTokens = { pad: 256, eos: 257, bos: 258 };
  readonly fingerprint = 'bytes-v1:259';

  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }

  decode(ids: readonly number[], options: { readonly keepSpecial?: boolean } = {}): string {
    const names: Record<number, string> = { 256: '<|pad|>', 257: '<|eos|>', 258: '<|bos|>' };
    let out = '';
    let bytes: number[] = [];
    const flush = () => {
      out += this.decoder.decode(new Uint8Array(bytes));
      bytes = [];
    };
    for (const id of ids) {
      if (id >= 0 && id < 256) bytes.push(id);
      else if (options.keepSpecial) {
        flush();
        out += names[id] ?? `<|${id}|>`;
      }
    }
    flush();
    return out;
  }

  toJSON(): unknown {
    return { kind: this.kind };
  }
}
