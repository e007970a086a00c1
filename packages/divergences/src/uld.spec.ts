import * as tf from '@tensorflow/tfjs-core';
import { runReference, tensorsLeakedBy, useBackend } from '@skd/testing';
import type { AlignedResponse, Divergence } from '@skd/core';
import { divergenceEntries } from './entries';
import {
  alignByByteOffsets,
  hybridUld,
  matchVocabularies,
  mergeAligned,
  sortedL1,
  uldLoss,
  uldResponseLoss,
  UldDivergence,
  type ByteSpan,
  type MergeStrategy,
  type UldOptions,
  type UldSequence,
} from './uld';

// Two responses tokenised two ways, after 3 prompt tokens on each side. Response 1 (12 bytes):
// student tokens end at bytes 2, 5, 6, 9, 12; teacher tokens at 1, 2, 6, 7, 9, 12. Response 2 (8 bytes),
// padded on the student side: student 3, 4, 8; teacher 1, 4, 6, 8.
const spans = (ends: number[]): ByteSpan[] => ends.map((end, i) => [i === 0 ? 0 : (ends[i - 1] as number), end]);
const student = { responses: [spans([2, 5, 6, 9, 12]), spans([3, 4, 8])], length: 8, vocab: 11 };
const teacher = { responses: [spans([1, 2, 6, 7, 9, 12]), spans([1, 4, 6, 8])], length: 9, vocab: 13 };
const PROMPT = 3;

/** A side's batch as TRL's collator lays it out: ids, labels (-100 off the response), byte offsets. */
function side(s: typeof student, seed: number) {
  const ids = s.responses.map((_, b) => Array.from({ length: s.length }, (_, t) => (seed * 7 + b * 5 + t * 3) % s.vocab));
  const labels = s.responses.map((r, b) => ids[b]?.map((id, t) => (t >= PROMPT && t < PROMPT + r.length ? id : -100)) as number[]);
  const offsets = s.responses.map((r) =>
    Array.from({ length: s.length }, (_, t) => (t >= PROMPT && t < PROMPT + r.length ? [...(r[t - PROMPT] as ByteSpan)] : [0, 0])),
  );
  return { ids, labels, offsets };
}

describe.each(['cpu', 'wasm'] as const)('ULD and GOLD across tokenizers on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('aligns two tokenizations into groups that end where both split at the same byte', () => {
    expect(alignByByteOffsets(student.responses[0] as ByteSpan[], teacher.responses[0] as ByteSpan[])).toEqual({
      student: [[0], [1, 2], [3], [4]],
      teacher: [[0, 1], [2], [3, 4], [5]],
    });
    // Texts that end differently: what is left forms one last group.
    expect(alignByByteOffsets(spans([2, 4, 7]), spans([2, 5]))).toEqual({ student: [[0], [1, 2]], teacher: [[0], [1]] });
  });

  it('merges a group by the chain rule: observed from its first position, bayesian from its last', () => {
    const probs = tf.tensor2d([
      [0.5, 0.3, 0.2],
      [0.1, 0.6, 0.3],
      [0.2, 0.2, 0.6],
    ]);
    const tokens = [1, 2, 0];
    const observed = mergeAligned(probs, [[0, 1, 2]], tokens, 'observed').arraySync();
    // First row times p(token at 1) = 0.3 and p(token at 2) = 0.2.
    expect(observed[0]?.map((v) => +v.toFixed(6))).toEqual([0.03, 0.018, 0.012]);
    const bayesian = mergeAligned(probs, [[0, 1, 2], []], tokens, 'bayesian').arraySync();
    // Last row times p(token at 0) = 0.3 and p(token at 1) = 0.3; an empty group is zeros.
    expect(bayesian.map((row) => row.map((v) => +v.toFixed(6)))).toEqual([
      [0.018, 0.018, 0.054],
      [0, 0, 0],
    ]);
    probs.dispose();
  });

  it('matches vocabularies by token string', () => {
    const match = matchVocabularies(
      new Map([
        ['a', 0],
        ['b', 1],
        ['cd', 2],
      ]),
      new Map([
        ['cd', 5],
        ['a', 3],
        ['x', 0],
      ]),
    );
    expect(match).toEqual({ teacherIds: [3, 5], studentIds: [0, 2] });
  });

  const hybrid = { teacherIds: [0, 2, 5, 7, 12], studentIds: [1, 0, 4, 9, 3] };
  it.each<[string, MergeStrategy, boolean, UldOptions['hybrid'] | undefined]>([
    ['ULD, observed merge', 'observed', true, undefined],
    ['ULD, bayesian merge', 'bayesian', true, undefined],
    ['ULD without byte offsets (rows paired by position)', 'observed', false, undefined],
    ['GOLD hybrid, beta 0.5, weights by overlap', 'observed', true, { match: hybrid, beta: 0.5 }],
    ['GOLD hybrid, beta 0, bayesian', 'bayesian', true, { match: hybrid, beta: 0 }],
    ['GOLD hybrid, beta 1, fixed weights', 'observed', true, { match: hybrid, beta: 1, weights: { matched: 0.7, unmatched: 0.3 } }],
  ])("%s: equals TRL GOLD's ULDLoss on the same logits and alignments (within 1e-5)", (_name, merge, extended, gold) => {
    const s = side(student, 1);
    const t = side(teacher, 2);
    const studentLogits = tf.randomNormal([2, student.length, student.vocab], 0, 2, 'float32', 11) as tf.Tensor3D;
    const teacherLogits = tf.randomNormal([2, teacher.length, teacher.vocab], 0, 2, 'float32', 12) as tf.Tensor3D;
    const temperatures = { studentTemperature: 1.5, teacherTemperature: 0.8 };
    const theirs = runReference<{ loss: number }>(['uld'], {
      studentLogits: studentLogits.arraySync(),
      teacherLogits: teacherLogits.arraySync(),
      studentLabels: s.labels,
      teacherLabels: t.labels,
      studentIds: s.ids,
      teacherIds: t.ids,
      studentOffsets: s.offsets,
      teacherOffsets: t.offsets,
      merge,
      extended,
      ...temperatures,
      hybrid: gold
        ? { ...gold.match, beta: gold.beta, ...(gold.weights ? { matchedWeight: gold.weights.matched, unmatchedWeight: gold.weights.unmatched } : {}) }
        : null,
    });
    // The rows TRL reads: a response's own positions ("observed"), or one earlier ("bayesian").
    const shift = merge === 'bayesian' ? -1 : 0;
    const sequences: UldSequence[] = [0, 1].map((b) => {
      const [ns, nt] = [(student.responses[b] as ByteSpan[]).length, (teacher.responses[b] as ByteSpan[]).length];
      return {
        studentLogits: tf.reshape(tf.slice(studentLogits, [b, PROMPT + shift, 0], [1, ns, -1]), [ns, student.vocab]) as tf.Tensor2D,
        teacherLogits: tf.reshape(tf.slice(teacherLogits, [b, PROMPT + shift, 0], [1, nt, -1]), [nt, teacher.vocab]) as tf.Tensor2D,
        studentTokens: (s.ids[b] as number[]).slice(PROMPT, PROMPT + ns),
        teacherTokens: (t.ids[b] as number[]).slice(PROMPT, PROMPT + nt),
        ...(extended ? { studentSpans: student.responses[b] as ByteSpan[], teacherSpans: teacher.responses[b] as ByteSpan[] } : {}),
      };
    });
    const ours = uldLoss(sequences, { ...temperatures, merge, ...(gold ? { hybrid: gold } : {}) });
    expect(Math.abs((ours.dataSync()[0] as number) - theirs.loss)).toBeLessThan(1e-5);
    expect(theirs.loss).toBeGreaterThan(1e-3);
    [ours, studentLogits, teacherLogits, ...sequences.flatMap((q) => [q.studentLogits, q.teacherLogits])].forEach((x) => x.dispose());
  });

  it("GOLD's hybrid on one-to-one groups only: the hybrid on those rows, the sorted L1 on the rest, averaged over all groups", () => {
    // Response 1: groups (student tokens | teacher tokens) [0 | 0, 1], [1, 2 | 2], [3 | 3, 4], [4 | 5]: one of four is one-to-one.
    const [studentSpans, teacherSpans] = [student.responses[0] as ByteSpan[], teacher.responses[0] as ByteSpan[]];
    const sequence: UldSequence = {
      studentLogits: tf.randomNormal([5, student.vocab], 0, 2, 'float32', 41) as tf.Tensor2D,
      teacherLogits: tf.randomNormal([6, teacher.vocab], 0, 2, 'float32', 42) as tf.Tensor2D,
      studentTokens: [1, 4, 2, 8, 0],
      teacherTokens: [3, 1, 7, 12, 5, 9],
      studentSpans,
      teacherSpans,
    };
    const options: UldOptions = { studentTemperature: 1, teacherTemperature: 1, merge: 'observed', hybrid: { match: hybrid, beta: 0.5, groups: 'one-to-one' } };
    const ours = uldResponseLoss(sequence, options);
    const all = uldResponseLoss(sequence, { ...options, hybrid: { match: hybrid, beta: 0.5 } });
    const expected = tf.tidy(() => {
      const aligned = alignByByteOffsets(studentSpans, teacherSpans);
      expect(aligned.student).toEqual([[0], [1, 2], [3], [4]]);
      expect(aligned.teacher).toEqual([[0, 1], [2], [3, 4], [5]]);
      const rows = (logits: tf.Tensor2D, groups: number[][], tokens: readonly number[]) =>
        mergeAligned(tf.softmax(logits) as tf.Tensor2D, groups, tokens, 'observed');
      const s = rows(sequence.studentLogits, aligned.student, sequence.studentTokens);
      const t = rows(sequence.teacherLogits, aligned.teacher, sequence.teacherTokens);
      const pick = (x: tf.Tensor2D, at: number[]) => tf.gather(x, tf.tensor1d(at, 'int32')) as tf.Tensor2D;
      const one = hybridUld(pick(s, [3]), pick(t, [3]), { match: hybrid, beta: 0.5 });
      const many = sortedL1(pick(s, [0, 1, 2]), pick(t, [0, 1, 2]));
      return tf.div(tf.add(one, tf.mul(many, 3)), 4);
    });
    expect(ours.groups).toBe(4);
    expect(Math.abs((ours.loss.dataSync()[0] as number) - (expected.dataSync()[0] as number))).toBeLessThan(1e-6);
    expect(Math.abs((ours.loss.dataSync()[0] as number) - (all.loss.dataSync()[0] as number))).toBeGreaterThan(1e-4); // not the hybrid everywhere
    // The registry's option reaches the divergence.
    const entry = divergenceEntries.find((e) => e.kind === 'gold');
    const made = entry?.create(entry.options.parse({ matchedGroups: 'one-to-one' }), { baseDir: '.', rng: undefined as never }) as UldDivergence;
    expect(made.options.hybrid?.groups).toBe('one-to-one');
    tf.dispose([sequence.studentLogits, sequence.teacherLogits, ours.loss, all.loss, expected]);
  });

  it("the student's gradient through sorting, merging and the hybrid matches finite differences; nothing leaks", async () => {
    const studentLogits = tf.variable(tf.randomNormal([5, student.vocab], 0, 2, 'float32', 21)) as tf.Variable<tf.Rank.R2>;
    const teacherLogits = tf.randomNormal([6, teacher.vocab], 0, 2, 'float32', 22) as tf.Tensor2D;
    const sequence = (x: tf.Tensor2D): UldSequence => ({
      studentLogits: x,
      teacherLogits,
      studentTokens: [1, 4, 2, 8, 0],
      teacherTokens: [3, 1, 7, 12, 5, 9],
      studentSpans: student.responses[0] as ByteSpan[],
      teacherSpans: teacher.responses[0] as ByteSpan[],
    });
    const options: UldOptions = { studentTemperature: 1, teacherTemperature: 1, merge: 'observed', hybrid: { match: hybrid, beta: 0.5 } };
    const f = (x: tf.Tensor2D) => uldLoss([sequence(x)], options);
    const { grads } = tf.variableGrads(() => f(studentLogits), [studentLogits]);
    const grad = (grads[studentLogits.name] as tf.Tensor).dataSync();
    const base = studentLogits.dataSync();
    for (const k of [0, 7, 13, 25, 40, 54]) {
      const h = 1e-3;
      const [plus, minus] = [Float32Array.from(base), Float32Array.from(base)];
      plus[k] = (plus[k] as number) + h;
      minus[k] = (minus[k] as number) - h;
      const at = (values: Float32Array) => tf.tidy(() => f(tf.tensor2d(values, [5, student.vocab])).dataSync()[0] as number);
      expect(Math.abs((at(plus) - at(minus)) / (2 * h) - (grad[k] as number))).toBeLessThan(2e-3);
    }
    expect(Array.from(grad).some((g) => Math.abs(g) > 1e-3)).toBe(true);
    expect(
      await tensorsLeakedBy(() => {
        f(studentLogits).dispose(); // without a tape
        const step = tf.variableGrads(() => f(studentLogits), [studentLogits]);
        tf.dispose([step.value, ...Object.values(step.grads)]);
      }),
    ).toBe(0);
    [studentLogits, teacherLogits, ...Object.values(grads)].forEach((x) => x.dispose());
  });
});

describe.each(['cpu', 'wasm'] as const)('the uld and gold divergences on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const create = (kind: string, options: object): Divergence => {
    const entry = divergenceEntries.find((e) => e.kind === kind);
    return entry?.create(entry.options.parse(options), { baseDir: '.', rng: undefined as never }) as Divergence;
  };
  const log = (values: number[]) => values.map(Math.log);

  it("compares one tokenizer's positions: ULD's sorted L1 and GOLD's JSD, by hand", () => {
    // Student probabilities (1/6, 2/6, 3/6), teacher (3/5, 1/5, 1/5); sorted, |0.5 - 0.6| + |1/3 - 0.2| + |1/6 - 0.2| = 4/15.
    const studentLogits = tf.tensor3d([[log([1, 2, 3])]]);
    const teacherLogits = tf.tensor3d([[log([3, 1, 1])]]);
    const uld = create('uld', {}).perToken({ studentLogits, teacherLogits });
    expect(uld.dataSync()[0]).toBeCloseTo(4 / 15, 6);
    // beta 0: KL(p || q) = sum p log(p / q) over the same ids.
    const [q, p] = [
      [1 / 6, 2 / 6, 3 / 6],
      [0.6, 0.2, 0.2],
    ];
    const kl = p.reduce((sum, pi, i) => sum + pi * Math.log(pi / (q[i] as number)), 0);
    const gold = create('gold', { beta: 0 }).perToken({ studentLogits, teacherLogits });
    expect(gold.dataSync()[0]).toBeCloseTo(kl, 5);
    const weighted = create('gold', { beta: 0, matchedWeight: 0.25, unmatchedWeight: 0.75 }).perToken({ studentLogits, teacherLogits });
    expect(weighted.dataSync()[0]).toBeCloseTo(0.25 * kl, 5);
    // The cross-entropy term adds -log q(target) times its weight.
    const targets = tf.tensor2d([[2]], [1, 1], 'int32');
    const withCe = create('uld', { crossEntropyWeight: 0.5 }).perToken({ studentLogits, teacherLogits, targets });
    expect(withCe.dataSync()[0]).toBeCloseTo(4 / 15 - 0.5 * Math.log(0.5), 6);
    expect(() => create('gold', { matchedWeight: 0.5 })).toThrow(/matchedWeight and unmatchedWeight together/);
    [studentLogits, teacherLogits, uld, gold, weighted, targets, withCe].forEach((x) => x.dispose());
  });

  it('gives each aligned response its mean over groups; skips the end tokens by default, keeps them when asked', () => {
    const ends = { student: [2, 5, 6, 9, 12, 12], teacher: [1, 2, 6, 7, 9, 12, 12] }; // each ends with a zero-width end token
    const response: AlignedResponse = {
      studentLogits: tf.randomNormal([6, student.vocab], 0, 2, 'float32', 31) as tf.Tensor2D,
      teacherLogits: tf.randomNormal([7, teacher.vocab], 0, 2, 'float32', 32) as tf.Tensor2D,
      studentTokens: [1, 4, 2, 8, 0, 10],
      teacherTokens: [3, 1, 7, 12, 5, 9, 11],
      studentSpans: spans(ends.student),
      teacherSpans: spans(ends.teacher),
      ended: true,
    };
    const options: UldOptions = { studentTemperature: 1, teacherTemperature: 1, merge: 'observed' };
    const trimmed: UldSequence = {
      studentLogits: tf.slice(response.studentLogits, [0, 0], [5, -1]),
      teacherLogits: tf.slice(response.teacherLogits, [0, 0], [6, -1]),
      studentTokens: response.studentTokens.slice(0, 5),
      teacherTokens: response.teacherTokens.slice(0, 6),
      studentSpans: response.studentSpans.slice(0, 5),
      teacherSpans: response.teacherSpans.slice(0, 6),
    };
    const skip = new UldDivergence('uld', options).aligned([response, { ...response, ended: false }], () => ({ student: new Map(), teacher: new Map() }));
    const expected = uldResponseLoss(trimmed, options);
    expect(expected.groups).toBe(4);
    expect(skip.groups).toEqual([4, 5]);
    expect(skip.values.dataSync()[0]).toBeCloseTo(expected.loss.dataSync()[0] as number, 6);
    const kept = uldResponseLoss(response, options);
    expect(skip.values.dataSync()[1]).toBeCloseTo(kept.loss.dataSync()[0] as number, 6);
    const keep = new UldDivergence('uld', { ...options, eos: 'keep' }).aligned([response], () => ({ student: new Map(), teacher: new Map() }));
    expect(keep.values.dataSync()[0]).toBeCloseTo(kept.loss.dataSync()[0] as number, 6);
    // GOLD asks for the vocabularies once and matches their texts.
    let asked = 0;
    const vocabularies = () => {
      asked += 1;
      return {
        student: new Map([
          ['a', 1],
          ['b', 4],
        ]),
        teacher: new Map([
          ['b', 7],
          ['a', 3],
          ['c', 0],
        ]),
      };
    };
    const gold = new UldDivergence('gold', { ...options, hybrid: { beta: 0.5 } });
    const first = gold.aligned([response], vocabularies);
    const again = gold.aligned([response], vocabularies);
    const direct = uldResponseLoss(trimmed, { ...options, hybrid: { match: { teacherIds: [3, 7], studentIds: [1, 4] }, beta: 0.5 } });
    expect(first.values.dataSync()[0]).toBeCloseTo(direct.loss.dataSync()[0] as number, 6);
    expect(asked).toBe(1);
    tf.dispose([
      response.studentLogits,
      response.teacherLogits,
      trimmed.studentLogits,
      trimmed.teacherLogits,
      skip.values,
      keep.values,
      expected.loss,
      kept.loss,
      first.values,
      again.values,
      direct.loss,
    ]);
  });
});
