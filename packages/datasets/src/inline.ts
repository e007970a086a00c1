import { z } from 'zod';
import { defineComponent, type Dataset, type DatasetSource, type Example, type SplitName } from '@skd/core';

const exampleSchema = z.strictObject({
  prompt: z.string(),
  response: z.string().min(1, 'response must not be empty'),
  fields: z.record(z.string(), z.unknown()).optional(),
});

/** Examples written in the config itself: for smoke runs, tests and tiny demonstrations. */
export class InlineDataset implements DatasetSource {
  static readonly kind = 'inline';

  constructor(
    readonly name: string,
    private readonly splits: Readonly<Record<SplitName, readonly Example[]>>,
    private readonly stop: readonly string[] = [],
  ) {}

  split(split: SplitName): Dataset {
    const examples = this.splits[split];
    return {
      name: `${this.name}/${split}`,
      size: examples.length,
      ...(this.stop.length ? { stopStrings: this.stop } : {}),
      async *[Symbol.asyncIterator]() {
        yield* examples;
      },
    };
  }
}

export const inlineDatasetEntry = defineComponent({
  component: 'dataset',
  kind: InlineDataset.kind,
  summary: 'examples listed in the config (train/eval/test arrays of {prompt, response})',
  options: z.strictObject({
    name: z.string().default('inline').describe('dataset name in reports'),
    train: z.array(exampleSchema).min(1).describe('training examples'),
    eval: z.array(exampleSchema).default([]).describe('validation examples'),
    test: z.array(exampleSchema).default([]).describe('test examples'),
    stop: z
      .array(z.string().min(1, 'a stop string must not be empty'))
      .default([])
      .describe(
        'strings that end a response: a row stops generating at the first token that holds one, and its text is cut before the first one, before it is trained on or scored',
      ),
  }),
  create: (options) => {
    const withIds = (split: SplitName, xs: readonly z.infer<typeof exampleSchema>[]): Example[] =>
      xs.map((x, i) => ({ id: `${options.name}/${split}/${i}`, ...x }));
    return new InlineDataset(
      options.name,
      {
        train: withIds('train', options.train),
        eval: withIds('eval', options.eval),
        test: withIds('test', options.test),
      },
      options.stop,
    );
  },
});
