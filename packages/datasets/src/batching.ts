import { FormatError, SkdError, encodePrompt, encodeResponse, type Dataset, type Example, type PromptBatch, type Tokenizer } from '@skd/core';
import type { InvalidPolicy, ReadReport } from './jsonl';

export interface BatchingOptions {
  readonly tokenizer: Tokenizer;
  readonly batchSize: number;
  /** Longest prompt + response (+ BOS, EOS) a model accepts. */
  readonly contextLength: number;
  /** Prepend the tokenizer's BOS to every prompt (when it has one). Default true. */
  readonly addBos?: boolean;
  /** Examples that do not fit the context: stop (default) or skip and count. */
  readonly onTooLong?: InvalidPolicy;
  /** Drop a last, smaller batch. Default false. */
  readonly dropLast?: boolean;
}

/** An example as token ids: the prompt (BOS first) and the response trained on (ending with EOS or a chat template's end of turn). */
export function tokenizeExample(example: Example, tokenizer: Tokenizer, addBos = true): { prompt: number[]; reference: number[] } {
  return { prompt: encodePrompt(tokenizer, example.prompt, addBos), reference: encodeResponse(tokenizer, example.target ?? example.response) };
}

/**
 * Pulls examples from a dataset and yields token-id batches. Over-long examples are reported with
 * their id and lengths, never cut silently; with `onTooLong: "skip"` they are counted in `report`.
 */
export async function* promptBatches(
  dataset: Dataset,
  options: BatchingOptions,
  report: ReadReport = { kept: 0, skipped: {} },
): AsyncGenerator<PromptBatch & { readonly examples: readonly Example[] }> {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new SkdError(`batchSize must be an integer >= 1, got ${options.batchSize}`);
  let examples: Example[] = [];
  let prompts: number[][] = [];
  let references: number[][] = [];
  const flush = () => {
    const batch = {
      prompts,
      references,
      ids: examples.map((e) => e.id),
      examples,
      ...(dataset.stopStrings?.length ? { stopStrings: dataset.stopStrings } : {}),
    };
    examples = [];
    prompts = [];
    references = [];
    return batch;
  };
  for await (const example of dataset) {
    const { prompt, reference } = tokenizeExample(example, options.tokenizer, options.addBos ?? true);
    const length = prompt.length + reference.length;
    if (length > options.contextLength) {
      if ((options.onTooLong ?? 'fail') === 'fail') {
        throw new FormatError(
          example.id,
          `example has ${length} tokens (prompt ${prompt.length} + response ${reference.length}), more than the context of ${options.contextLength}`,
          {
            hint: 'filter long examples from the data, use a model with a longer context (student.options.contextLength, for a model the config defines), or set training.onTooLong: "skip" to skip and count them',
          },
        );
      }
      report.skipped['too-long'] = (report.skipped['too-long'] ?? 0) + 1;
      continue;
    }
    report.kept += 1;
    examples.push(example);
    prompts.push(prompt);
    references.push(reference);
    if (examples.length === options.batchSize) yield flush();
  }
  if (examples.length > 0 && !options.dropLast) yield flush();
}
