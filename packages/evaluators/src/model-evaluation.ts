import * as tf from '@tensorflow/tfjs-core';
import {
  Rng,
  cutAtStopStrings,
  generationStops,
  throwIfInterrupted,
  type Dataset,
  type Evaluator,
  type LanguageModel,
  type Metrics,
  type Prediction,
  type Tokenizer,
} from '@skd/core';
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
  /** Checked between batches: when aborted, evaluation stops with an InterruptedError. */
  readonly signal?: AbortSignal;
}

/** A prompt and the tokens generated after it (EOS included when reached). */
export interface GeneratedOutput {
  readonly prompt: readonly number[];
  readonly tokens: readonly number[];
}

export interface ModelEvaluation {
  readonly metrics: Metrics;
  readonly predictions: Prediction[];
  /** The token ids behind each prediction, in the same order (to judge them with a teacher). */
  readonly outputs: GeneratedOutput[];
}

/**
 * Greedy batched generation (as the paper evaluates), each output cut before the dataset's first
 * stop string, then every evaluator on the same outputs. Generation runs once; metrics are merged
 * (names must differ across evaluators).
 */
export async function evaluateModel(options: EvaluationOptions): Promise<ModelEvaluation> {
  const predictions: Prediction[] = [];
  const outputs: GeneratedOutput[] = [];
  const rng = Rng.create(0); // greedy decoding draws nothing; generate() still takes a stream
  for await (const batch of promptBatches(options.dataset, {
    tokenizer: options.tokenizer,
    batchSize: options.batchSize,
    contextLength: options.model.contextLength,
    onTooLong: 'skip',
  })) {
    const maxNewTokens = Math.min(options.maxNewTokens, options.model.contextLength - Math.max(...batch.prompts.map((p) => p.length)));
    const stop = generationStops(options.tokenizer, batch.stopStrings); // rows end at a stop string's token: the cut drops the rest
    const { tokens } = await generate(options.model, batch.prompts, {
      maxNewTokens: Math.max(1, maxNewTokens),
      eos: options.tokenizer.special.eos,
      ...(stop ? { stop } : {}),
      pad: options.tokenizer.special.pad,
      rng,
      greedy: true,
    });
    tokens.forEach((generated, i) => {
      // Cut before the dataset's first stop string, as training cuts its samples; scored without the EOS that ends the cut.
      const t = cutAtStopStrings(options.tokenizer, generated, batch.stopStrings) ?? generated;
      predictions.push({ example: batch.examples[i] as Prediction['example'], text: options.tokenizer.decode(t) });
      outputs.push({ prompt: batch.prompts[i] as number[], tokens: t });
    });
    options.onProgress?.(predictions.length, options.dataset.size);
    await throwIfInterrupted(options.signal, `evaluation stopped after ${predictions.length} examples`);
  }
  const metrics: Record<string, number> = {};
  for (const evaluator of options.evaluators) Object.assign(metrics, await evaluator.evaluate(predictions));
  return { metrics, predictions, outputs };
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
  const outputs: GeneratedOutput[] = [];
  for await (const batch of promptBatches(dataset, {
    tokenizer,
    batchSize: options.batchSize ?? 16,
    contextLength: student.contextLength,
    onTooLong: 'skip',
  })) {
    const { tokens } = await generate(student, batch.prompts, {
      maxNewTokens: options.maxNewTokens,
      eos: tokenizer.special.eos,
      ...(tokenizer.special.stop ? { stop: tokenizer.special.stop } : {}),
      pad: tokenizer.special.pad,
      rng: Rng.create(0),
      greedy: true,
    });
    tokens.forEach((t, b) => outputs.push({ prompt: batch.prompts[b] as number[], tokens: t }));
  }
  return judgeOutputs(teacher, outputs, { topK: options.topK, batchSize: options.batchSize ?? 16, pad: tokenizer.special.pad });
}

/**
 * The share of generated tokens the teacher ranks inside its top-K (strictly fewer than K tokens
 * scored above them), judging already generated outputs in right-padded batches: one teacher
 * forward per batch (causal attention: padding after a row never changes its positions).
 */
export async function judgeOutputs(
  teacher: LanguageModel,
  outputs: readonly GeneratedOutput[],
  options: { readonly topK: number; readonly batchSize: number; readonly pad: number },
): Promise<Metrics> {
  let inside = 0;
  let total = 0;
  const rows = outputs.filter((o) => o.tokens.length > 0 && o.prompt.length + o.tokens.length <= teacher.contextLength);
  for (let start = 0; start < rows.length; start += options.batchSize) {
    const batch = rows.slice(start, start + options.batchSize);
    const L = Math.max(...batch.map((o) => o.prompt.length + o.tokens.length));
    const ids = new Int32Array(batch.length * L).fill(options.pad);
    const next = new Int32Array(batch.length * L); // the token each position predicts, where judged
    const judged = new Float32Array(batch.length * L);
    batch.forEach((o, b) => {
      ids.set(o.prompt, b * L);
      ids.set(o.tokens, b * L + o.prompt.length);
      next.set(o.tokens, b * L + o.prompt.length - 1);
      judged.fill(1, b * L + o.prompt.length - 1, b * L + o.prompt.length - 1 + o.tokens.length);
    });
    const counts = tf.tidy(() => {
      const logits = teacher.logits(tf.tensor2d(ids, [batch.length, L], 'int32')); // (B, L, V)
      const own = tf.sum(tf.mul(logits, tf.oneHot(tf.tensor2d(next, [batch.length, L], 'int32'), teacher.vocabSize)), -1, true); // (B, L, 1)
      const above = tf.sum(tf.cast(tf.greater(logits, own), 'int32'), -1); // (B, L): tokens ranked strictly above
      const mask = tf.tensor2d(judged, [batch.length, L]);
      return tf.stack([tf.sum(tf.mul(tf.cast(tf.less(above, options.topK), 'float32'), mask)), tf.sum(mask)]);
    });
    const [hits, count] = Array.from(await counts.data());
    counts.dispose();
    inside += hits as number;
    total += count as number;
  }
  return { teacherAcceptance: total ? inside / total : 0, judgedTokens: total };
}
