import * as fs from 'node:fs';
import * as path from 'node:path';
import { BpeTokenizer, type BpeSpecialNames, type BpeTokenizerConfig } from '../bpe-tokenizer';
import { readJson, writeFileAtomic } from './atomic';

/** The `tokenizer_config.json` that goes with a tokenizer file: `tokenizer.json` → `tokenizer_config.json`, `x.json` → `x_config.json`. */
export function tokenizerConfigPath(file: string): string {
  return file.replace(/(\.json)?$/, '_config.json');
}

/** Reads a Hugging Face `tokenizer.json` and, when present, the `tokenizer_config.json` beside it. */
export function readBpeTokenizer(file: string, special?: Partial<BpeSpecialNames>): BpeTokenizer {
  const configFile = tokenizerConfigPath(file);
  const config = fs.existsSync(configFile) ? (readJson(configFile, 'tokenizer_config.json') as Partial<BpeTokenizerConfig>) : undefined;
  return BpeTokenizer.fromJSON(readJson(file, 'tokenizer.json'), file, special, config);
}

/**
 * Writes `tokenizer.json` and its `tokenizer_config.json`, as Hugging Face saves a fast tokenizer.
 * When the tokenizer has a BOS, the file's post-processor puts it before each sequence, as skd puts
 * it before each prompt: Hugging Face's `tokenizer(text)` then gives skd's ids.
 */
export function writeBpeTokenizer(file: string, tokenizer: BpeTokenizer): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const doc = tokenizer.toJSON() as Record<string, unknown>;
  const bos = tokenizer.special.bos;
  if (bos !== undefined) {
    const name = tokenizer.decode([bos], { keepSpecial: true });
    doc['post_processor'] = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: name, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: name, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: name, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [name]: { id: name, ids: [bos], tokens: [name] } },
    };
  }
  writeFileAtomic(file, `${JSON.stringify(doc)}\n`);
  writeFileAtomic(tokenizerConfigPath(file), `${JSON.stringify(tokenizer.tokenizerConfig(), null, 2)}\n`);
}
