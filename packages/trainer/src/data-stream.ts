import { SkdError, type Dataset, type DatasetSource, type Example, type PromptBatch, type Tokenizer } from '@skd/core';
import { promptBatches, type InvalidPolicy, type ReadReport } from '@skd/datasets';

/**
 * Training batches forever: the train split again and again, in the same order each epoch. It
 * counts what it served, so a resumed run skips exactly the batches the interrupted one consumed.
 */
export class BatchStream {
  private iterator: AsyncIterator<PromptBatch> | undefined;
  consumed = 0;
  epoch = 0;

  constructor(
    private readonly dataset: DatasetSource,
    private readonly options: { readonly tokenizer: Tokenizer; readonly batchSize: number; readonly contextLength: number; readonly onTooLong?: InvalidPolicy },
  ) {}

  async next(): Promise<PromptBatch> {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.iterator ??= promptBatches(this.dataset.split('train'), { onTooLong: 'fail', ...this.options })[Symbol.asyncIterator]();
      const result = await this.iterator.next();
      if (!result.done) {
        this.consumed += 1;
        return result.value;
      }
      this.iterator = undefined;
      this.epoch += 1;
    }
    throw new Error('the train split yielded no batch: it is empty');
  }

  async skip(batches: number): Promise<void> {
    while (this.consumed < batches) await this.next();
  }
}

/**
 * Reads the whole training split once, tokenized as training will see it, so a malformed record or
 * an example longer than the context fails before any training work (with its file and line), or,
 * with `onTooLong: "skip"`, is counted. Returns the examples training will use and those skipped as
 * too long; a split with nothing to train on is an error.
 */
export async function checkTrainingData(
  dataset: DatasetSource,
  options: { readonly tokenizer: Tokenizer; readonly contextLength: number; readonly onTooLong?: InvalidPolicy },
): Promise<{ examples: number; tooLong: number }> {
  const report: ReadReport = { kept: 0, skipped: {} };
  for await (const batch of promptBatches(dataset.split('train'), { onTooLong: 'fail', ...options, batchSize: 64 }, report)) void batch;
  const tooLong = report.skipped['too-long'] ?? 0;
  if (report.kept === 0) {
    const why = tooLong > 0 ? `has no example to train on: all ${tooLong} are longer than the context of ${options.contextLength}` : 'is empty';
    throw new SkdError(`the train split of dataset "${dataset.name}" ${why}`, {
      hint: tooLong > 0 ? 'raise the student\'s contextLength' : 'point "dataset" at a file with training examples',
    });
  }
  return { examples: report.kept, tooLong };
}

/** The first `limit` examples of a dataset. */
export function take(dataset: Dataset, limit: number): Dataset {
  return {
    name: dataset.name,
    ...(dataset.size !== undefined ? { size: Math.min(limit, dataset.size) } : {}),
    async *[Symbol.asyncIterator](): AsyncGenerator<Example> {
      let n = 0;
      for await (const example of dataset) {
        if (n++ >= limit) return;
        yield example;
      }
    },
  };
}
