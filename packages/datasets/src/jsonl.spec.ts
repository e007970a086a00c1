import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Rng, type Example, type Tokenizer } from '@skd/core';
import { promptBatches } from './batching';
import { JsonlDataset, jsonlDatasetEntry, type JsonlDatasetOptions } from './jsonl';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-data-'));
const write = (name: string, lines: string[]) => {
  fs.writeFileSync(path.join(dir, name), lines.join('\n'));
  return name;
};
const good = write(
  'good.jsonl',
  Array.from({ length: 20 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: `a${i}`, level: i % 3 })),
);

function dataset(over: Partial<JsonlDatasetOptions> = {}): JsonlDataset {
  return new JsonlDataset({
    name: 'toy',
    files: { train: good },
    baseDir: dir,
    fields: { prompt: 'question', response: 'answer', extra: ['level'] },
    template: 'Q: {prompt} (level {level})\nA:',
    limit: undefined,
    shuffle: false,
    onInvalid: 'fail',
    rng: Rng.create(1),
    ...over,
  });
}

async function all(source: JsonlDataset, split: 'train' | 'eval' | 'test' = 'train'): Promise<Example[]> {
  const out: Example[] = [];
  for await (const e of source.split(split)) out.push(e);
  return out;
}

describe('JsonlDataset', () => {
  it('reads gzip-compressed JSONL (.gz) like plain JSONL, and names the file when it is not gzip', async () => {
    const lines = fs.readFileSync(path.join(dir, good), 'utf8');
    fs.writeFileSync(path.join(dir, 'good.jsonl.gz'), zlib.gzipSync(lines));
    const plain = await all(dataset());
    const gzipped = await all(dataset({ files: { train: 'good.jsonl.gz' } }));
    expect(gzipped.map((e) => [e.prompt, e.response])).toEqual(plain.map((e) => [e.prompt, e.response]));
    fs.writeFileSync(path.join(dir, 'fake.jsonl.gz'), lines);
    await expect(all(dataset({ files: { train: 'fake.jsonl.gz' } }))).rejects.toThrow(/fake\.jsonl\.gz: cannot read: incorrect header check/);
  });

  it('maps fields, fills the template, keeps extra fields, and streams in file order', async () => {
    const examples = await all(dataset());
    expect(examples).toHaveLength(20);
    expect(examples[1]).toEqual({ id: 'good.jsonl:2', prompt: 'Q: q1 (level 1)\nA:', response: 'a1', fields: { level: 1 } });
  });

  it('takes the same low-data subset for the same seed, another for another seed', async () => {
    const subset = async (seed: number) => (await all(dataset({ limit: 5, shuffle: true, rng: Rng.create(seed) }))).map((e) => e.response);
    expect(await subset(1)).toEqual(await subset(1));
    expect(await subset(1)).not.toEqual(await subset(2));
    expect(await subset(1)).toHaveLength(5);
    const source = dataset({ limit: 5, shuffle: true });
    expect(await all(source)).toEqual(await all(source)); // iterating again restarts the same split
  });

  it.each([
    ['malformed line', '{"question": "q", "answer": ', 'bad1.jsonl:2: not valid JSON', 'malformed'],
    ['missing field', '{"question": "q"}', 'bad2.jsonl:2: missing fields "answer", "level"', 'missing-field'],
    ['empty response', '{"question": "q", "answer": "  ", "level": 1}', 'bad3.jsonl:2: empty response in field "answer"', 'empty-response'],
    ['not an object', '[1, 2]', 'bad4.jsonl:2: each record must be a JSON object', 'malformed'],
    ['numeric response', '{"question": "q", "answer": 42, "level": 1}', 'bad5.jsonl:2: field "answer" must be a string, got the number 42', 'wrong-type'],
  ])('reports a %s with file and line, or skips and counts it', async (_name, badLine, message, reason) => {
    const file = write(`bad${['malformed line', 'missing field', 'empty response', 'not an object', 'numeric response'].indexOf(_name) + 1}.jsonl`, [
      JSON.stringify({ question: 'q0', answer: 'a0', level: 0 }),
      badLine,
      JSON.stringify({ question: 'q2', answer: 'a2', level: 2 }),
    ]);
    await expect(all(dataset({ files: { train: file } }))).rejects.toThrow(message);
    const skipping = dataset({ files: { train: file }, onInvalid: 'skip' });
    expect((await all(skipping)).map((e) => e.response)).toEqual(['a0', 'a2']);
    expect(skipping.reports.train).toEqual({ kept: 2, skipped: { [reason]: 1 } });
  });

  it('refuses a line whose bytes are not UTF-8 (naming file:line), or skips and counts it; CRLF and a missing last newline read as usual', async () => {
    const file = path.join(dir, 'latin1.jsonl');
    const good = (i: number) => Buffer.from(`${JSON.stringify({ question: `q${i}`, answer: `a${i}`, level: i })}\r\n`);
    const latin1 = Buffer.from('{"question": "caf\xe9", "answer": "x", "level": 1}\n', 'latin1'); // é as one byte: not UTF-8
    fs.writeFileSync(file, Buffer.concat([good(0), latin1, good(2).subarray(0, good(2).length - 2)]));
    await expect(all(dataset({ files: { train: file } }))).rejects.toThrow('latin1.jsonl:2: bytes that are not valid UTF-8');
    const skipping = dataset({ files: { train: file }, onInvalid: 'skip' });
    expect((await all(skipping)).map((e) => e.response)).toEqual(['a0', 'a2']);
    expect(skipping.reports.train).toEqual({ kept: 2, skipped: { 'invalid-utf8': 1 } });
  });

  it('reads JSON-array files, and names a missing file at construction', async () => {
    const file = 'array.json';
    fs.writeFileSync(path.join(dir, file), JSON.stringify([{ question: 'x', answer: 'y', level: 0 }]));
    expect((await all(dataset({ files: { test: file } }), 'test')).map((e) => e.prompt)).toEqual(['Q: x (level 0)\nA:']);
    expect(() => dataset({ files: { train: 'nope.jsonl' } })).toThrow('the train file of dataset "toy" does not exist');
  });

  it('validates its options strictly', () => {
    expect(jsonlDatasetEntry.options.safeParse({ files: {} }).success).toBe(false);
    expect(jsonlDatasetEntry.options.safeParse({ files: { train: 'x' }, limt: 3 }).success).toBe(false);
    expect(jsonlDatasetEntry.options.parse({ files: { train: 'x' } })).toMatchObject({ shuffle: true, onInvalid: 'fail', template: '{prompt}' });
  });
});

describe('promptBatches', () => {
  const tokenizer = {
    special: { pad: 0, eos: 1, bos: 2 },
    encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0)),
  } as unknown as Tokenizer;

  it('tokenizes prompts (BOS first) and references (EOS last) into batches', async () => {
    const batches = [];
    for await (const b of promptBatches(dataset({ template: '{prompt}' }).split('train'), { tokenizer, batchSize: 8, contextLength: 64 })) batches.push(b);
    expect(batches.map((b) => b.prompts.length)).toEqual([8, 8, 4]);
    expect(batches[0]?.prompts[0]).toEqual([2, 113, 48]);
    expect(batches[0]?.references[0]).toEqual([97, 48, 1]);
    expect(batches[0]?.ids[0]).toBe('good.jsonl:1');
    expect(batches[0]?.stopStrings).toBeUndefined();
  });

  it('carries the dataset\'s stop strings to every split and batch (option "stop")', async () => {
    const options = jsonlDatasetEntry.options.parse({ files: { train: good }, stop: ['\n', '###'] });
    expect(options.stop).toEqual(['\n', '###']);
    expect(jsonlDatasetEntry.options.safeParse({ files: { train: good }, stop: [''] }).success).toBe(false);
    const source = dataset({ stop: options.stop });
    expect(source.split('test').stopStrings).toEqual(['\n', '###']);
    for await (const b of promptBatches(source.split('train'), { tokenizer, batchSize: 8, contextLength: 64 })) expect(b.stopStrings).toEqual(['\n', '###']);
  });

  it('reports examples longer than the context with their id, or skips and counts them', async () => {
    const file = write('long.jsonl', [
      JSON.stringify({ question: 'short', answer: 'ok', level: 0 }),
      JSON.stringify({ question: 'x'.repeat(50), answer: 'y', level: 0 }),
    ]);
    const source = () => dataset({ files: { train: file }, template: '{prompt}' }).split('train');
    const run = async (onTooLong: 'fail' | 'skip', report = { kept: 0, skipped: {} as Record<string, number> }) => {
      const out = [];
      for await (const b of promptBatches(source(), { tokenizer, batchSize: 4, contextLength: 20, onTooLong }, report)) out.push(b);
      return { out, report };
    };
    await expect(run('fail')).rejects.toThrow('long.jsonl:2: example has 53 tokens (prompt 51 + response 2), more than the context of 20');
    const { out, report } = await run('skip');
    expect(out[0]?.prompts).toHaveLength(1);
    expect(report).toEqual({ kept: 1, skipped: { 'too-long': 1 } });
  });
});
