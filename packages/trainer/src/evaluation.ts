import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { encodePrompt, encodeResponse, type Dataset, type Divergence, type Evaluator, type LanguageModel, type Prediction, type Tokenizer } from '@skd/core';
import { tokenLoss } from '@skd/divergences';
import { bootstrapScores, evaluateModel, intervals, judgeOutputs, referencePerplexity, type BootstrapScores } from '@skd/evaluators';
import { tokenizerBridge, writeFileAtomic, type TokenizerBridge } from '@skd/models';
import { alignedLoss, teacherBatch, teacherBatchLogits } from './cross-tokenizer';
import { assembleBatch } from '@skd/samplers';

/** What evaluating a student on a split needs. */
export interface EvaluationParts {
  readonly student: LanguageModel;
  /** Scores the final evaluation's outputs (teacher acceptance) and the KD validation loss. */
  readonly teacher: LanguageModel | undefined;
  readonly tokenizer: Tokenizer;
  /** The teacher's own tokenizer, when it differs from the student's (losses are then computed across tokenizers). */
  readonly teacherTokenizer?: Tokenizer | undefined;
  /** The run's divergence: the validation loss is the training loss on references. */
  readonly divergence: Divergence;
  readonly evaluators: readonly Evaluator[];
  readonly batchSize: number;
  readonly maxNewTokens: number;
}

export interface SplitEvaluation {
  /** Task metrics, validation loss, and at the final evaluation perplexity and teacher acceptance. */
  readonly metrics: Record<string, number>;
  /** 95% bootstrap intervals of the metrics whose evaluators have per-example statistics. */
  readonly intervals: Record<string, [number, number]>;
  readonly predictions: readonly Prediction[];
  /** The bootstrap scores behind the intervals (written beside the predictions for paired tests). */
  readonly scores: BootstrapScores | undefined;
}

/** The paper's K for the teacher-acceptance diagnostic of a final evaluation. */
export const ACCEPTANCE_TOP_K = 25;

/**
 * Greedy generation on `dataset`, every evaluator with 95% bootstrap intervals, and the validation
 * loss. `final` adds the student's perplexity of the references and how often the teacher ranks the
 * student's greedy tokens in its top-25 (a direct measure of agreement). The end of a training run
 * and `skd eval` both call this, so they report the same numbers.
 */
export async function evaluateSplit(
  parts: EvaluationParts,
  dataset: Dataset,
  options: { readonly final: boolean; readonly onProgress?: (done: number, total: number | undefined) => void; readonly signal?: AbortSignal },
): Promise<SplitEvaluation> {
  const { student, teacher, tokenizer, evaluators, batchSize } = parts;
  const { metrics, predictions, outputs } = await evaluateModel({
    model: student,
    tokenizer,
    dataset,
    evaluators,
    batchSize,
    maxNewTokens: parts.maxNewTokens,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const all: Record<string, number> = { ...metrics };
  const validationLoss = await referenceLoss(
    parts,
    predictions.map((p) => p.example),
  );
  if (validationLoss !== undefined) all['validationLoss'] = validationLoss;
  if (options.final) {
    all['perplexity'] = (await referencePerplexity(student, tokenizer, dataset, batchSize))['perplexity'] as number;
    // Whether the teacher ranks a student token in its top-K needs one vocabulary; across tokenizers it is not measured.
    if (teacher && !acrossTokenizers(parts))
      all['teacherAcceptance'] = (await judgeOutputs(teacher, outputs, { topK: ACCEPTANCE_TOP_K, batchSize, pad: tokenizer.special.pad }))[
        'teacherAcceptance'
      ] as number;
  }
  const scores = predictions.length > 0 && evaluators.some((e) => e.statistics) ? await bootstrapScores(predictions, evaluators) : undefined;
  return { metrics: all, intervals: scores ? intervals(scores) : {}, predictions, scores };
}

/**
 * Writes an evaluation under runDir/eval: `<split>-step-NNNNNN.jsonl` (each prediction beside its
 * prompt, reference and the example's extra fields) and, with `bootstrap`, the bootstrap scores
 * beside it. Returns the bootstrap file's path when written.
 */
export function writeEvaluation(
  runDir: string,
  split: string,
  step: number,
  evaluation: SplitEvaluation,
  options: { readonly bootstrap: boolean },
): string | undefined {
  const stem = path.join(runDir, 'eval', `${split}-step-${String(step).padStart(6, '0')}`);
  const lines = evaluation.predictions.map((p) =>
    JSON.stringify({
      id: p.example.id,
      prompt: p.example.prompt,
      reference: p.example.response,
      prediction: p.text,
      ...(p.example.fields ? { fields: p.example.fields } : {}),
    }),
  );
  writeFileAtomic(`${stem}.jsonl`, lines.join('\n') + '\n');
  if (!options.bootstrap || !evaluation.scores) return undefined;
  writeFileAtomic(`${stem}.bootstrap.json`, `${JSON.stringify(evaluation.scores)}\n`);
  return `${stem}.bootstrap.json`;
}

/** Whether the teacher reads another tokenizer than the student's. */
function acrossTokenizers(parts: EvaluationParts): boolean {
  const own = parts.teacherTokenizer;
  return own !== undefined && parts.teacher !== undefined && own.fingerprint !== parts.tokenizer.fingerprint;
}

/** The bridge the validation loss goes through: across tokenizers, for a divergence that runs the teacher. */
function bridgeOf(parts: EvaluationParts): TokenizerBridge | undefined {
  return acrossTokenizers(parts) && parts.divergence.needsTeacher && parts.divergence.aligned
    ? tokenizerBridge(parts.tokenizer, parts.teacherTokenizer as Tokenizer)
    : undefined;
}

/**
 * The training loss on references (teacher-forced), for DistiLLM's schedule and the report: the
 * divergence summed over every target token of the examples, in micro-batches of the training batch
 * size (one batch of a whole evaluation set can exhaust the wasm heap), over the total count.
 */
export async function referenceLoss(
  parts: EvaluationParts,
  examples: readonly { prompt: string; response: string; target?: string }[],
): Promise<number | undefined> {
  const { tokenizer, student, teacher, divergence, batchSize } = parts;
  if (examples.length === 0 || (divergence.needsTeacher && !teacher)) return undefined;
  const rows = examples
    .map((e) => ({ prompt: encodePrompt(tokenizer, e.prompt), response: encodeResponse(tokenizer, e.target ?? e.response) }))
    .filter((r) => r.prompt.length + r.response.length <= student.contextLength);
  if (rows.length === 0) return undefined;
  // Every response token (EOS included) is a target: prompts are never empty, so each has a token before it.
  const bridge = bridgeOf(parts);
  // Across tokenizers each response's value is a mean over its aligned groups, averaged over responses.
  const normalizer = bridge ? rows.length : rows.reduce((n, r) => n + r.response.length, 0);
  let loss = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const batch = assembleBatch(rows.slice(i, i + batchSize), tokenizer.special.pad, student.contextLength);
    if (bridge && teacher) {
      const view = teacherBatch(batch.tokens, batch.targetMask, bridge, teacher);
      const value = tf.tidy(() =>
        alignedLoss({
          divergence,
          bridge,
          studentLogits: student.logits(batch.tokens, { mask: batch.attentionMask }),
          teacherLogits: teacherBatchLogits(teacher, view),
          batch: view,
          normalizer,
        }),
      );
      loss += (await value.data())[0] as number;
      [value, batch.tokens, batch.attentionMask, batch.targetMask].forEach((x) => x.dispose());
      view.dispose();
      continue;
    }
    const value = tf.tidy(() =>
      tokenLoss({
        divergence,
        tokens: batch.tokens,
        targetMask: batch.targetMask,
        normalizer,
        studentLogits: student.logits(batch.tokens, { mask: batch.attentionMask }),
        ...(divergence.needsTeacher && teacher ? { teacherLogits: teacher.logits(batch.tokens, { mask: batch.attentionMask }) } : {}),
      }),
    );
    loss += (await value.data())[0] as number;
    [value, batch.tokens, batch.attentionMask, batch.targetMask].forEach((x) => x.dispose());
  }
  return loss;
}
