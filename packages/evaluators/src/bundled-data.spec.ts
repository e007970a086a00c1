import * as path from 'node:path';
import { Rng, type Example, type SplitName } from '@skd/core';
import { JsonlDataset } from '@skd/datasets';
import { InstructionChecks } from './corpus-evaluators';
import { ExactMatch } from './exact-match';
import { corpusBleu } from './text-metrics';

// The datasets shipped in data/ (built by tools/datasets): each loads with the JSONL loader, and
// each reference passes its own task's metric, so a broken builder cannot ship silently.
const DATA = path.resolve(__dirname, '../../../data');

function load(task: string, extra: string[] = []): JsonlDataset {
  return new JsonlDataset({
    name: task,
    files: { train: 'train.jsonl.gz', eval: 'eval.jsonl', test: 'test.jsonl' },
    baseDir: path.join(DATA, task),
    fields: { prompt: 'prompt', response: 'response', extra },
    template: '{prompt}',
    limit: undefined,
    shuffle: false,
    onInvalid: 'fail',
    rng: Rng.create(1),
  });
}

async function read(source: JsonlDataset, split: SplitName): Promise<Example[]> {
  const out: Example[] = [];
  for await (const e of source.split(split)) out.push(e);
  return out;
}

describe('bundled datasets', () => {
  it.each([
    ['arithmetic', 40000],
    ['instructions', 40000],
    ['translation-as-en', 40000],
    ['summarization', 40000],
    ['arithmetic-small', 40000],
    ['descriptions', 40000],
    ['translation-bn-en', 30000],
  ])('%s has at least %i training examples, and eval and test splits', async (task, minimum) => {
    const source = load(task);
    expect((await read(source, 'train')).length).toBeGreaterThanOrEqual(minimum);
    expect((await read(source, 'eval')).length).toBeGreaterThan(100);
    expect((await read(source, 'test')).length).toBeGreaterThan(100);
  });

  it('arithmetic references end in "#### answer" and score 1 on exact match', async () => {
    const test = await read(load('arithmetic', ['answer']), 'test');
    expect(await new ExactMatch({ answerMarker: '####' }).evaluate(test.map((example) => ({ example, text: example.response })))).toEqual({
      exactMatch: 1,
      count: test.length,
    });
    test.forEach((e) => expect(e.response.endsWith(`#### ${e.fields?.['answer']}`)).toBe(true));
  });

  it('instruction references pass their own checks', async () => {
    const test = await read(load('instructions', ['check']), 'test');
    expect(await new InstructionChecks().evaluate(test.map((example) => ({ example, text: example.response })))).toEqual({ passRate: 1, count: test.length });
  });

  it('translation splits share no source string (split by package), and references score BLEU 100', async () => {
    const source = load('translation-as-en', ['package']);
    const [train, test] = [await read(source, 'train'), await read(source, 'test')];
    const trainSources = new Set(train.map((e) => e.prompt));
    expect(test.filter((e) => trainSources.has(e.prompt))).toEqual([]);
    const trainPackages = new Set(train.map((e) => e.fields?.['package']));
    expect(test.filter((e) => trainPackages.has(e.fields?.['package']))).toEqual([]);
    expect(test.every((e) => /[\u0980-\u09FF]/u.test(e.prompt))).toBe(true);
    expect(
      corpusBleu(
        test.map((e) => e.response),
        test.map((e) => e.response),
      ).score,
    ).toBeCloseTo(100, 6);
  });

  // The students' pre-training corpora must not hold their task's evaluation prompts.
  it('arithmetic-small holds none of the arithmetic eval or test prompts', async () => {
    const task = load('arithmetic');
    const held = new Set([...(await read(task, 'eval')), ...(await read(task, 'test'))].map((e) => e.prompt));
    const corpus = load('arithmetic-small');
    for (const split of ['train', 'eval', 'test'] as const) expect((await read(corpus, split)).filter((e) => held.has(e.prompt))).toEqual([]);
  });

  it('descriptions come from summarization training sources only', async () => {
    const task = load('summarization', ['source']);
    const sources = async (split: SplitName) => new Set((await read(task, split)).map((e) => e.fields?.['source']));
    const [train, evalSources, testSources] = [await sources('train'), await sources('eval'), await sources('test')];
    const corpus = load('descriptions', ['source']);
    for (const split of ['train', 'eval', 'test'] as const) {
      const rows = await read(corpus, split);
      expect(rows.filter((e) => !train.has(e.fields?.['source']) || evalSources.has(e.fields?.['source']) || testSources.has(e.fields?.['source']))).toEqual(
        [],
      );
    }
  });

  it('translation-bn-en holds no package of translation-as-en eval or test, nor any of their references', async () => {
    const task = load('translation-as-en', ['package']);
    const held = [...(await read(task, 'eval')), ...(await read(task, 'test'))];
    const packages = new Set(held.map((e) => e.fields?.['package']));
    const references = new Set(held.map((e) => e.response));
    const corpus = load('translation-bn-en', ['package']);
    for (const split of ['train', 'eval', 'test'] as const) {
      const rows = await read(corpus, split);
      expect(rows.filter((e) => packages.has(e.fields?.['package']) || references.has(e.response))).toEqual([]);
      expect(rows.every((e) => /[\u0980-\u09FF]/u.test(e.prompt))).toBe(true);
    }
  });
});
