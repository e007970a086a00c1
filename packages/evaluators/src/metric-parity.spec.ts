import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng, type Example } from '@skd/core';
import { runReference } from '@skd/testing';
import { BleuChrf } from './corpus-evaluators';
import { corpusBleu, corpusChrf } from './text-metrics';

/**
 * BLEU, chrF and chrF++ equal sacreBLEU's (2.x, from .venv) on whole test splits, with system outputs
 * made from the references by the edits a model's outputs show: dropped, repeated and swapped words,
 * another example's text, a few characters, nothing, other casing and punctuation.
 */
const DATA = path.resolve(__dirname, '../../../data');
const split = (name: string) =>
  fs
    .readFileSync(path.join(DATA, name, 'test.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { prompt: string; response: string });

function outputsFor(references: readonly string[], seed: number): string[] {
  const rng = Rng.create(seed);
  const pick = (n: number) => Math.floor(rng.random() * n);
  return references.map((ref, i) => {
    const words = ref.split(' ');
    switch (pick(9)) {
      case 0:
        return ref;
      case 1:
        return words.filter(() => rng.random() > 0.3).join(' ');
      case 2:
        return [...words, ...words.slice(0, 2)].join(' ');
      case 3: {
        const a = pick(words.length);
        const b = pick(words.length);
        [words[a], words[b]] = [words[b] as string, words[a] as string];
        return words.join(' ');
      }
      case 4:
        return references[(i + 1) % references.length] as string;
      case 5:
        return Array.from(ref)
          .slice(0, 1 + pick(4))
          .join('');
      case 6:
        return '';
      case 7:
        return ref.toLowerCase().replace(/[.,]/g, ' !');
      default:
        return `${ref} (${words[0] ?? ''}).`;
    }
  });
}

interface SacreBleu {
  version: string;
  bleu: number;
  chrf: number;
  chrfpp: number;
  sentenceChrf: number[];
}

describe.each([
  ['translation-as-en', 11],
  ['translation-bn-en', 12],
  ['summarization', 13],
])('on the %s test split, against sacreBLEU', (name, seed) => {
  const rows = split(name);
  const references = rows.map((r) => r.response);
  // Short references too: the prompts' first words, where a reference has fewer characters than chrF's orders.
  const shortRefs = rows.map((r, i) =>
    i % 3 === 0
      ? Array.from(r.response)
          .slice(0, 1 + (i % 5))
          .join('')
      : r.response,
  );
  const cases = [
    { label: 'references', refs: references, hyps: outputsFor(references, seed) },
    { label: 'short references', refs: shortRefs, hyps: outputsFor(references, seed + 100) },
  ];

  it.each(cases.map((c) => [c.label, c]))('%s: corpus BLEU, chrF and chrF++ within 1e-6, every sentence chrF too', (_label, { refs, hyps }) => {
    const theirs = runReference<SacreBleu>(['sacrebleu'], { hypotheses: hyps, references: refs });
    expect(theirs.version).toMatch(/^2\./);
    expect(refs.length).toBeGreaterThan(100);
    expect(Math.abs(corpusBleu(hyps, refs).score - theirs.bleu)).toBeLessThan(1e-6);
    expect(Math.abs(corpusChrf(hyps, refs) - theirs.chrf)).toBeLessThan(1e-6);
    expect(Math.abs(corpusChrf(hyps, refs, { wordOrder: 2 }) - theirs.chrfpp)).toBeLessThan(1e-6);
    const off = hyps
      .map((h, i) => ({ i, h, r: refs[i], ours: corpusChrf([h], [refs[i] as string]), theirs: theirs.sentenceChrf[i] as number }))
      .filter((s) => Math.abs(s.ours - s.theirs) > 1e-6);
    expect(off.slice(0, 3)).toEqual([]);
  });

  it('the bleu evaluator reports the same numbers, chrfpp when asked', async () => {
    const { refs, hyps } = cases[0] as (typeof cases)[number];
    const theirs = runReference<SacreBleu>(['sacrebleu'], { hypotheses: hyps, references: refs });
    const predictions = hyps.map((text, i) => ({ example: { id: String(i), prompt: '', response: refs[i] } as Example, text }));
    const metrics = await new BleuChrf(true).evaluate(predictions);
    expect(metrics['bleu']).toBeCloseTo(theirs.bleu, 6);
    expect(metrics['chrf']).toBeCloseTo(theirs.chrf, 6);
    expect(metrics['chrfpp']).toBeCloseTo(theirs.chrfpp, 6);
    expect(Object.keys(await new BleuChrf().evaluate(predictions)).sort()).toEqual(['bleu', 'chrf', 'count']);
  });
});

describe("the committed translation runs' test predictions, rescored", () => {
  // What the paper table's students wrote on the 618 test messages (experiments/paper-table/results).
  const archives = path.resolve(__dirname, '../../../experiments/paper-table/results/translation');
  const unpack = (run: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-parity-'));
    const untar = spawnSync('tar', ['-xzf', path.join(archives, `${run}.tar.gz`), '-C', dir]);
    if (untar.status !== 0) throw new Error(`cannot unpack ${run}: ${untar.stderr}`);
    const evalDir = path.join(dir, run, 'eval');
    const file = fs.readdirSync(evalDir).find((f) => /^test-step-\d+\.jsonl$/.test(f)) as string;
    return fs
      .readFileSync(path.join(evalDir, file), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { reference: string; prediction: string });
  };

  it.each(['method-skd__data-1k__seed-1', 'method-on-policy__data-100__seed-2', 'method-supervised-ft__data-1k__seed-3'])(
    "%s: BLEU, chrF and chrF++ equal sacreBLEU's within 1e-6",
    (run) => {
      const rows = unpack(run);
      expect(rows).toHaveLength(618);
      const hyps = rows.map((r) => r.prediction);
      const refs = rows.map((r) => r.reference);
      const theirs = runReference<SacreBleu>(['sacrebleu'], { hypotheses: hyps, references: refs });
      expect(Math.abs(corpusBleu(hyps, refs).score - theirs.bleu)).toBeLessThan(1e-6);
      expect(Math.abs(corpusChrf(hyps, refs) - theirs.chrf)).toBeLessThan(1e-6);
      expect(Math.abs(corpusChrf(hyps, refs, { wordOrder: 2 }) - theirs.chrfpp)).toBeLessThan(1e-6);
    },
  );
});
