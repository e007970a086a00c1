import { Rng, SkdError, type Dataset, type DatasetSource, type Example, type PromptBatch, type Tokenizer } from '@skd/core';
import { promptBatches, type InvalidPolicy, type ReadReport } from '@skd/datasets';

type ExampleBatch = PromptBatch & { readonly examples: readonly Example[] };

export interface BatchStreamOptions {
  readonly tokenizer: Tokenizer;
  readonly batchSize: number;
  readonly contextLength: number;
  readonly onTooLong?: InvalidPolicy;
  /**
   * Group examples of similar length: read this many batches at a time, sort their examples by
   * length, cut them into batches again and serve those in a shuffled order (seeded by the group's
   * position, so the stream stays the same run to run). Padding shrinks; 0 or 1: off.
   */
  readonly groupByLength?: number;
}

/**
 * Training batches forever: the train split again and again, in the same order each epoch. It
 * counts what it served, so a resumed run skips exactly the batches the interrupted one consumed.
 */
export class BatchStream {
  private iterator: AsyncIterator<ExampleBatch> | undefined;
  private pending: PromptBatch[] = [];
  private groups = 0;
  consumed = 0;
  epoch = 0;

  constructor(
    private readonly dataset: DatasetSource,
    private readonly options: BatchStreamOptions,
  ) {}

  async next(): Promise<PromptBatch> {
    if (this.pending.length === 0) this.pending = await this.read(Math.max(1, this.options.groupByLength ?? 1));
    this.consumed += 1;
    return this.pending.shift() as PromptBatch;
  }

  /** The next `count` batches of the split (fewer at the end of an epoch), grouped by length when asked. */
  private async read(count: number): Promise<PromptBatch[]> {
    const batches: ExampleBatch[] = [];
    while (batches.length < count) {
      const batch = await this.pull(batches.length === 0);
      if (!batch) break;
      batches.push(batch);
    }
    if (count === 1) return batches;
    const rows = batches.flatMap((b) =>
      b.prompts.map((prompt, i) => ({ prompt, reference: b.references[i] as number[], id: b.ids[i] as string, example: b.examples[i] as Example })),
    );
    rows.sort((a, b) => a.prompt.length + a.reference.length - (b.prompt.length + b.reference.length));
    const regrouped: PromptBatch[] = [];
    for (let i = 0; i < rows.length; i += this.options.batchSize) {
      const slice = rows.slice(i, i + this.options.batchSize);
      regrouped.push({
        prompts: slice.map((r) => r.prompt),
        references: slice.map((r) => r.reference),
        ids: slice.map((r) => r.id),
        examples: slice.map((r) => r.example),
      } as ExampleBatch);
    }
    this.groups += 1;
    return Rng.create(this.groups).shuffle(regrouped);
  }

  /** One batch from the split; at its end the next epoch starts (unless `restart` is false and the epoch just ended). */
  private async pull(restart: boolean): Promise<ExampleBatch | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.iterator ??= promptBatches(this.dataset.split('train'), { onTooLong: 'fail', ...this.options })[Symbol.asyncIterator]();
      const result = await this.iterator.next();
      if (!result.done) return result.value;
      this.iterator = undefined;
      this.epoch += 1;
      if (!restart) return undefined;
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
 * with `onTooLong: "skip"`, is counted; the eval and test splits are read through as well. Returns
 * the examples training will use and those skipped as too long; a split with nothing to train on is
 * an error.
 */
export async function checkTrainingData(
  dataset: DatasetSource,
  options: { readonly tokenizer: Tokenizer; readonly contextLength: number; readonly onTooLong?: InvalidPolicy },
): Promise<{ examples: number; tooLong: number; longestPrompt: number; longestExample: number }> {
  const report: ReadReport = { kept: 0, skipped: {} };
  let longestPrompt = 0;
  let longestExample = 0;
  for await (const batch of promptBatches(dataset.split('train'), { onTooLong: 'fail', ...options, batchSize: 64 }, report)) {
    batch.prompts.forEach((prompt, i) => {
      longestPrompt = Math.max(longestPrompt, prompt.length);
      longestExample = Math.max(longestExample, prompt.length + (batch.references[i]?.length ?? 0));
    });
  }
  const tooLong = report.skipped['too-long'] ?? 0;
  if (report.kept === 0) {
    const why = tooLong > 0 ? `has no example to train on: all ${tooLong} are longer than the context of ${options.contextLength}` : 'is empty';
    throw new SkdError(`the train split of dataset "${dataset.name}" ${why}`, {
      hint:
        tooLong > 0
          ? 'use a student with a longer context (student.options.contextLength, for a model the config defines)'
          : 'point dataset.options.files.train at a file with training examples',
    });
  }
  // The eval and test files are read now too: a malformed record there would otherwise surface after the last step.
  for (const split of ['eval', 'test'] as const) for await (const example of dataset.split(split)) void example;
  return { examples: report.kept, tooLong, longestPrompt, longestExample };
}

/** Seed of evaluation subsets: fixed, so every run of a sweep is evaluated on the same examples. */
const EVALUATION_SAMPLE_SEED = 20241001;

/**
 * `limit` examples of a split for evaluation: a seeded random sample (`order` "sample", kept in file
 * order), the same for every run whatever its seed, so a file grouped by source is not judged on one
 * source; or the first `limit` (`order` "file").
 */
export function evaluationSubset(dataset: Dataset, limit: number | undefined, order: 'sample' | 'file', key: string): Dataset {
  if (limit !== undefined && order === 'file') return take(dataset, limit);
  // Read whole (evaluation splits are small), so the size is known once iteration starts: progress shows n/N.
  let counted: number | undefined;
  return {
    name: dataset.name,
    get size() {
      return counted ?? (dataset.size !== undefined ? Math.min(limit ?? dataset.size, dataset.size) : undefined);
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<Example> {
      const all: Example[] = [];
      for await (const example of dataset) all.push(example);
      if (limit === undefined || all.length <= limit) {
        counted = all.length;
        yield* all;
        return;
      }
      counted = limit;
      const picked = Rng.create(EVALUATION_SAMPLE_SEED)
        .fork(key)
        .shuffle(all.map((_, i) => i))
        .slice(0, limit)
        .sort((a, b) => a - b);
      for (const i of picked) yield all[i] as Example;
    },
  };
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
