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

/** Writes `tokenizer.json` and its `tokenizer_config.json`, as Hugging Face saves a fast tokenizer. */
export function writeBpeTokenizer(file: string, tokenizer: BpeTokenizer): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(tokenizer.toJSON())}\n`);
  writeFileAtomic(tokenizerConfigPath(file), `${JSON.stringify(tokenizer.tokenizerConfig(), null, 2)}\n`);
}
