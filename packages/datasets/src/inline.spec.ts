import type { DatasetSource } from '@skd/core';
import { inlineDatasetEntry } from './inline';

describe('inline dataset', () => {
  const options = inlineDatasetEntry.options.parse({
    name: 'toy',
    train: [
      { prompt: 'a', response: 'b' },
      { prompt: 'c', response: 'd' },
    ],
    test: [{ prompt: 'e', response: 'f' }],
  });
  const source = inlineDatasetEntry.create(options, {} as never) as ReturnType<typeof inlineDatasetEntry.create> & {
    split: (s: 'train' | 'eval' | 'test') => AsyncIterable<{ id: string; prompt: string }> & { size?: number };
  };

  it('streams each split with stable ids, and can be iterated again', async () => {
    const read = async (split: 'train' | 'eval' | 'test') => {
      const out: string[] = [];
      for await (const example of source.split(split)) out.push(`${example.id}:${example.prompt}`);
      return out;
    };
    expect(await read('train')).toEqual(['toy/train/0:a', 'toy/train/1:c']);
    expect(await read('train')).toEqual(['toy/train/0:a', 'toy/train/1:c']);
    expect(await read('eval')).toEqual([]);
    expect(source.split('test').size).toBe(1);
  });

  it('gives every split its stop strings (option "stop"), none by default', () => {
    const build = (stop?: string[]) =>
      inlineDatasetEntry.create(
        inlineDatasetEntry.options.parse({ train: [{ prompt: 'a', response: 'b' }], ...(stop ? { stop } : {}) }),
        {} as never,
      ) as unknown as DatasetSource;
    expect(build().split('train').stopStrings).toBeUndefined();
    expect(build(['\n']).split('test').stopStrings).toEqual(['\n']);
    expect(inlineDatasetEntry.options.safeParse({ train: [{ prompt: 'a', response: 'b' }], stop: [''] }).success).toBe(false);
  });

  it('rejects empty responses and unknown fields', () => {
    expect(inlineDatasetEntry.options.safeParse({ train: [{ prompt: 'a', response: '' }] }).success).toBe(false);
    expect(inlineDatasetEntry.options.safeParse({ train: [{ prompt: 'a', response: 'b', answer: 1 }] }).success).toBe(false);
  });
});
