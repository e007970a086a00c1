import type { Command } from 'commander';
import { FormatError, SkdError } from '@skd/core';
import { jsonlRecords } from '@skd/datasets';
import { BpeTokenizer, tokenizerConfigPath, writeBpeTokenizer } from '@skd/models';
import { integerOption } from '../options';
import type { CommandContext } from '../context';

/** `skd tokenizer`: a byte-level BPE tokenizer learned from JSONL text fields. */
export function tokenizerCommand(program: Command, { io }: CommandContext): void {
  program
    .command('tokenizer')
    .description('train a byte-level BPE tokenizer on JSONL text fields and save it as Hugging Face files (tokenizer.json and tokenizer_config.json)')
    .argument('<files...>', 'JSONL files to learn from')
    .requiredOption('--out <file>', 'where tokenizer.json goes')
    .option('--fields <names>', 'comma-separated record fields to read', 'prompt,response')
    .option('--vocab-size <n>', 'vocabulary size, bytes and special tokens included', integerOption(1), 2000)
    .option('--min-frequency <n>', 'ignore pairs seen fewer times', integerOption(1), 2)
    .option('--split-digits', 'every digit its own token (for arithmetic)', false)
    .action(async (files: string[], options: { out: string; fields: string; vocabSize: number; minFrequency: number; splitDigits: boolean }) => {
      const fields = options.fields
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean);
      const texts: string[] = [];
      for (const file of files) {
        for await (const { line, text, validUtf8 } of jsonlRecords(file)) {
          if (!validUtf8) throw new FormatError(`${file}:${line}`, 'bytes that are not valid UTF-8 (the file is in another encoding, or damaged)');
          let record: Record<string, unknown>;
          try {
            record = JSON.parse(text) as Record<string, unknown>;
          } catch (cause) {
            throw new FormatError(`${file}:${line}`, `not valid JSON: ${(cause as Error).message}`);
          }
          for (const f of fields) if (typeof record[f] === 'string') texts.push(record[f] as string);
        }
      }
      if (texts.length === 0)
        throw new SkdError(`no text found in fields ${fields.join(', ')} of ${files.join(', ')}`, { hint: 'name the text fields with --fields' });
      const tokenizer = BpeTokenizer.train(texts, { vocabSize: options.vocabSize, minFrequency: options.minFrequency, splitDigits: options.splitDigits });
      writeBpeTokenizer(options.out, tokenizer);
      const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
      const tokens = texts.reduce((n, t) => n + tokenizer.encode(t).length, 0);
      io.out(
        `tokenizer: ${tokenizer.vocabSize} tokens from ${texts.length} texts, ${(bytes / tokens).toFixed(2)} bytes per token -> ${options.out} (and ${tokenizerConfigPath(options.out)})`,
      );
      io.out(`use it with "tokenizer": { "kind": "bpe", "options": { "path": "${options.out}" } }`);
    });
}
