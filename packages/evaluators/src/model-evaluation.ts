import * as tf from '@tensorflow/tfjs-core';
import { Rng, type Dataset, type Evaluator, type LanguageModel, type Metrics, type Prediction, type Tokenizer } from '@skd/core';
import { promptBatches } from '@skd/datasets';
import { generate } from '@skd/models';

export interface EvaluationOptions {
  readonly model: LanguageModel;
  readonly tokenizer: Tokenizer;
  readonly dataset: Dataset;
  readonly evaluators: readonly Evaluator[];
  readonly batchSize: number;
  readonly maxNewTokens: number;
  /** Called after each batch with (examples done, total when known). */
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

/**
 * Greedy batched generation (as the paper evaluates), then every evaluator on the same outputs.
 * Generation runs once; metrics are merged (names must differ across evaluators).
 */
export async function evaluateModel(options: EvaluationOptions): Promise<{ metrics: Metrics; predictions: Prediction[] }> {
  const predictions: Prediction[] = [];
  const rng = Rng.create(0); // greedy decoding draws nothing; generate() still takes a stream
  for await (const batch of promptBatches(options.dataset, { tokenizer: options.tokenizer, batchSize: options.batchSize, contextLength: options.model.contextLength, onTooLong: 'skip' })) {
    const maxNewTokens = Math.min(options.maxNewTokens, options.model.contextLength - Math.max(...batch.prompts.map((p) => p.length)));
    const { tokens } = await generate(options.model, batch.prompts, {
      maxNewTokens: Math.max(1, maxNewTokens),
      eos: options.tokenizer.special.eos,
      pad: options.tokenizer.special.pad,
      rng,
      greedy: true,
    });
    tokens.forEach((t, i) => predictions.push({ example: batch.examples[i] as Prediction['example'], text: options.tokenizer.decode(t) }));
    options.onProgress?.(predictions.length, options.dataset.size);
  }
  const metrics: Record<string, number> = {};
  for (const evaluator of options.evaluators) Object.assign(metrics, await evaluator.evaluate(predictions));
  return { metrics, predictions };
}

/** exp(mean negative log-likelihood per reference token, EOS included) of the references given their prompts. */
export async function referencePerplexity(model: LanguageModel, tokenizer: Tokenizer, dataset: Dataset, batchSize = 16): Promise<Metrics> {
  let nll = 0;
  let count = 0;
  for await (const batch of promptBatches(dataset, { tokenizer, batchSize, contextLength: model.contextLength, onTooLong: 'skip' })) {
    const T = Math.max(...batch.prompts.map((p, i) => p.length + (batch.references[i]?.length ?? 0)));
    const ids = new Int32Array(batch.prompts.length * T).fill(tokenizer.special.pad);
    const targets = new Float32Array(batch.prompts.length * T);
    batch.prompts.forEach((p, b) => {
      const row = [...p, ...(batch.references[b] ?? [])];
      ids.set(row, b * T);
      targets.fill(1, b * T + p.length, b * T + row.length);
    });
    const sum = tf.tidy(() => {
      const tokens = tf.tensor2d(ids, [batch.prompts.length, T], 'int32');
      const logProbs = tf.logSoftmax(tf.slice(model.logits(tokens), [0, 0, 0], [-1, T - 1, -1])); // (B, T-1, V)
      const next = tf.slice(tokens, [0, 1], [-1, T - 1]); // (B, T-1)
      const picked = tf.sum(tf.mul(logProbs, tf.oneHot(next, model.vocabSize)), -1); // (B, T-1)
      const mask = tf.slice(tf.tensor2d(targets, [batch.prompts.length, T]), [0, 1], [-1, T - 1]); // (B, T-1)
      return tf.stack([tf.neg(tf.sum(tf.mul(picked, mask))), tf.sum(mask)]);
    });
    const [batchNll, batchCount] = Array.from(await sum.data());
    sum.dispose();
    nll += batchNll as number;
    count += batchCount as number;
  }
  return { perplexity: count ? Math.exp(nll / count) : Number.NaN, referenceTokens: count };
}

/**
 * The teacher's acceptance rate of the student's own greedy outputs: the share of generated tokens
 * inside the teacher's top-K at their position. A direct measure of teacher-student agreement
 * (SKD's acceptance rate without the sampling noise).
 */
export async function teacherAcceptance(
  teacher: LanguageModel,
  student: LanguageModel,
  tokenizer: Tokenizer,
  dataset: Dataset,
  options: { readonly topK: number; readonly batchSize?: number; readonly maxNewTokens: number },
): Promise<Metrics> {
  let inside = 0;
  let total = 0;
  for await (const batch of promptBatches(dataset, { tokenizer, batchSize: options.batchSize ?? 16, contextLength: student.contextLength, onTooLong: 'skip' })) {
    const { tokens } = await generate(student, batch.prompts, { maxNewTokens: options.maxNewTokens, eos: tokenizer.special.eos, pad: tokenizer.special.pad, rng: Rng.create(0), greedy: true });
    for (const [b, generated] of tokens.entries()) {
      const row = [...(batch.prompts[b] as number[]), ...generated];
      const P = (batch.prompts[b] as number[]).length;
      const ranks = tf.tidy(() => {
        const logits = teacher.logits(tf.tensor2d([row], [1, row.length], 'int32')); // (1, L, V)
        const scores = tf.slice(logits, [0, P - 1, 0], [1, generated.length, -1]); // (1, G, V)
        const own = tf.sum(tf.mul(scores, tf.oneHot(tf.tensor2d([generated], [1, generated.length], 'int32'), teacher.vocabSize)), -1, true); // (1, G, 1)
        return tf.sum(tf.cast(tf.greater(scores, own), 'int32'), -1); // (1, G): tokens ranked strictly above
      });
      for (const rank of await ranks.data()) {
        total += 1;
        if (rank < options.topK) inside += 1;
      }
      ranks.dispose();
    }
  }
  return { teacherAcceptance: total ? inside / total : 0, judgedTokens: total };
}
