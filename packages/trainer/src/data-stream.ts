import { SkdError, type Dataset, type DatasetSource, type Example, type PromptBatch, type Tokenizer } from '@skd/core';
import { promptBatches } from '@skd/datasets';

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
    private readonly options: { readonly tokenizer: Tokenizer; readonly batchSize: number; readonly contextLength: number },
  ) {}

  async next(): Promise<PromptBatch> {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.iterator ??= promptBatches(this.dataset.split('train'), { ...this.options, onTooLong: 'fail' })[Symbol.asyncIterator]();
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
 * an example longer than the context fails before any training work (with its file and line).
 * Returns the number of training examples; an empty split is an error.
 */
export async function checkTrainingData(dataset: DatasetSource, options: { readonly tokenizer: Tokenizer; readonly contextLength: number }): Promise<number> {
  let examples = 0;
  for await (const batch of promptBatches(dataset.split('train'), { ...options, batchSize: 64, onTooLong: 'fail' })) examples += batch.prompts.length;
  if (examples === 0) throw new SkdError(`the train split of dataset "${dataset.name}" is empty`, { hint: 'point "dataset" at a file with training examples' });
  return examples;
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
