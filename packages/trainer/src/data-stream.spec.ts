import type { DatasetSource, Example, PromptBatch } from '@skd/core';
import { ByteTokenizer } from '@skd/models';
import { BatchStream, evaluationSubset } from './data-stream';

const tokenizer = new ByteTokenizer();

/** 40 training examples whose lengths vary widely and unevenly. */
const examples: Example[] = Array.from({ length: 40 }, (_, i) => ({
  id: `e${i}`,
  prompt: 'p'.repeat(1 + ((i * 7) % 23)),
  response: 'r'.repeat(1 + ((i * 11) % 5)),
}));

const source: DatasetSource = {
  name: 'lengths',
  split: () => ({
    name: 'lengths',
    size: examples.length,
    async *[Symbol.asyncIterator]() {
      yield* examples;
    },
  }),
};

const stream = (groupByLength: number) => new BatchStream(source, { tokenizer, batchSize: 4, contextLength: 64, groupByLength });
const lengthOf = (batch: PromptBatch, i: number) => (batch.prompts[i] as number[]).length + (batch.references[i] as number[]).length;
const padded = (batch: PromptBatch) => batch.prompts.length * Math.max(...batch.prompts.map((_, i) => lengthOf(batch, i)));

async function take(s: BatchStream, n: number): Promise<PromptBatch[]> {
  const out: PromptBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await s.next());
  return out;
}

describe('BatchStream', () => {
  it('serves the split in order, epoch after epoch', async () => {
    const s = stream(0);
    const batches = await take(s, 12);
    expect(batches.slice(0, 10).flatMap((b) => b.ids)).toEqual(examples.map((e) => e.id));
    expect(batches[10]?.ids).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect([s.consumed, s.epoch]).toEqual([12, 1]);
  });

  it('groups by length: same examples per group and per epoch, less padding, the same stream every time', async () => {
    const plain = await take(stream(0), 10);
    const s = stream(4);
    const grouped = await take(s, 10);
    // Groups of 4 batches (16 examples) hold what the plain stream served in the same 4 batches.
    for (const [from, to] of [
      [0, 4],
      [4, 8],
      [8, 10],
    ] as const) {
      expect(
        grouped
          .slice(from, to)
          .flatMap((b) => b.ids)
          .sort(),
      ).toEqual(
        plain
          .slice(from, to)
          .flatMap((b) => b.ids)
          .sort(),
      );
    }
    // Inside a group every batch is a run of the length-sorted examples, so batches overlap little.
    const total = (bs: PromptBatch[]) => bs.reduce((n, b) => n + padded(b), 0);
    expect(total(grouped)).toBeLessThan(0.85 * total(plain));
    const lengths = (b: PromptBatch) => b.prompts.map((_, i) => lengthOf(b, i));
    const ranges = grouped
      .slice(0, 4)
      .map((b) => [Math.min(...lengths(b)), Math.max(...lengths(b))] as const)
      .sort((a, b) => a[0] - b[0]);
    ranges.slice(1).forEach(([low], i) => expect(low).toBeGreaterThanOrEqual((ranges[i] as readonly [number, number])[1]));
    expect((await take(stream(4), 10)).map((b) => b.ids)).toEqual(grouped.map((b) => b.ids));
    // The epoch ends with the split (a short last group), and the next one starts over.
    const next = await s.next();
    expect(s.epoch).toBe(1);
    expect(grouped.slice(0, 4).flatMap((b) => b.ids)).toContain(next.ids[0]);
  });

  it('skips to where an interrupted run stopped', async () => {
    const reference = await take(stream(4), 13);
    const resumed = stream(4);
    await resumed.skip(7);
    expect((await take(resumed, 6)).map((b) => b.ids)).toEqual(reference.slice(7).map((b) => b.ids));
  });
});

describe('evaluationSubset', () => {
  // 40 examples grouped by source, as files often are: 20 from "a", then 20 from "b".
  const examples: Example[] = Array.from({ length: 40 }, (_, i) => ({ id: `${i < 20 ? 'a' : 'b'}${i}`, prompt: 'p', response: 'r' }));
  const dataset = {
    name: 'grouped',
    size: 40,
    async *[Symbol.asyncIterator]() {
      yield* examples;
    },
  };
  const ids = async (d: AsyncIterable<Example>) => {
    const out: string[] = [];
    for await (const e of d) out.push(e.id);
    return out;
  };

  it('keeps a seeded random sample in file order, the same every time, drawn from the whole split', async () => {
    const sample = await ids(evaluationSubset(dataset, 10, 'sample', 'eval'));
    expect(sample).toHaveLength(10);
    expect(await ids(evaluationSubset(dataset, 10, 'sample', 'eval'))).toEqual(sample);
    expect(sample.map((id) => Number(id.slice(1)))).toEqual([...sample.map((id) => Number(id.slice(1)))].sort((a, b) => a - b));
    expect(sample.some((id) => id.startsWith('a')) && sample.some((id) => id.startsWith('b'))).toBe(true);
    expect(await ids(evaluationSubset(dataset, 10, 'sample', 'test'))).not.toEqual(sample); // each split its own draw
  });

  it('keeps the first examples with order "file", and everything when the limit covers the split', async () => {
    expect(await ids(evaluationSubset(dataset, 3, 'file', 'eval'))).toEqual(['a0', 'a1', 'a2']);
    expect(await ids(evaluationSubset(dataset, 100, 'sample', 'eval'))).toEqual(examples.map((e) => e.id));
    expect(await ids(evaluationSubset(dataset, undefined, 'sample', 'eval'))).toHaveLength(40);
  });

  it('knows its size once iteration starts, even over a split of unknown size (progress shows n/N)', async () => {
    const streamed = {
      name: 'streamed',
      async *[Symbol.asyncIterator]() {
        yield* examples;
      },
    };
    const subset = evaluationSubset(streamed, 10, 'sample', 'eval');
    expect(subset.size).toBeUndefined();
    const iterator = subset[Symbol.asyncIterator]();
    await iterator.next();
    expect(subset.size).toBe(10);
    const whole = evaluationSubset(streamed, undefined, 'sample', 'test');
    await whole[Symbol.asyncIterator]().next();
    expect(whole.size).toBe(40);
  });
});
