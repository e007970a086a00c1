import * as tf from '@tensorflow/tfjs-core';
import { SkdError, alignByByteOffsets, type AlignedResponse, type Divergence, type LanguageModel } from '@skd/core';
import type { BridgedResponse, TokenizerBridge } from '@skd/models';

/** One row of a batch on both sides: where its response starts in each side's sequence. */
interface BridgedRow {
  readonly row: number;
  readonly studentStart: number;
  readonly studentTokens: readonly number[];
  readonly teacherStart: number;
  readonly bridged: BridgedResponse;
}

/** A student batch's rows in the teacher's tokens: the teacher's sequences, and each row's two responses. */
export interface TeacherBatch {
  /** (B', T') the teacher's sequences (prompt, response, padding) of the rows that have a response. */
  readonly tokens: tf.Tensor2D;
  readonly attentionMask: tf.Tensor2D;
  readonly rows: readonly BridgedRow[];
  /** Responses longer than the teacher's context: compared up to the last byte-aligned group that fits. */
  readonly clipped: number;
  dispose(): void;
}

/**
 * Carries a batch's rows to the teacher's tokenizer: each row's response is its target positions
 * (contiguous, after the prompt), its prompt everything before; both are decoded and encoded by the
 * teacher's tokenizer (see `TokenizerBridge`). Rows without targets have nothing to compare and are
 * left out. A response that would pass the teacher's context is compared up to the last group of
 * tokens, aligned by bytes, that fits (counted in `clipped`).
 */
export function teacherBatch(tokens: tf.Tensor2D, targetMask: tf.Tensor2D, bridge: TokenizerBridge, teacher: LanguageModel): TeacherBatch {
  const ids = tokens.arraySync();
  const mask = targetMask.arraySync();
  const rows: BridgedRow[] = [];
  const sequences: number[][] = [];
  let clipped = 0;
  ids.forEach((rowIds, row) => {
    const targets = (mask[row] as number[]).flatMap((m, t) => (m > 0 ? [t] : []));
    if (targets.length === 0) return;
    const [first, last] = [targets[0] as number, targets[targets.length - 1] as number];
    if (last - first + 1 !== targets.length) throw new SkdError(`cross-tokenizer distillation: row ${row}'s targets are not one contiguous response`);
    if (first === 0) throw new SkdError(`cross-tokenizer distillation: row ${row} has no prompt token before its response`);
    const studentTokens = rowIds.slice(first, last + 1);
    const prompt = bridge.teacherPrompt(rowIds.slice(0, first));
    if (prompt.length === 0) {
      throw new SkdError(`cross-tokenizer distillation: row ${row}'s prompt is empty in the teacher's tokens, so nothing scores its first token`, {
        hint: "give the teacher's tokenizer a BOS token, or the prompts some text",
      });
    }
    let response: { studentTokens: readonly number[]; bridged: BridgedResponse } = { studentTokens, bridged: bridge.teacherResponse(studentTokens) };
    const room = teacher.contextLength - prompt.length;
    if (response.bridged.teacherTokens.length > room) {
      clipped += 1;
      response = clipToGroups(response.studentTokens, response.bridged, room);
      if (response.studentTokens.length === 0) return;
    }
    rows.push({ row, studentStart: first, studentTokens: response.studentTokens, teacherStart: prompt.length, bridged: response.bridged });
    const sequence = [...prompt, ...response.bridged.teacherTokens];
    sequences.push(sequence);
  });
  const width = Math.max(1, ...sequences.map((s) => s.length));
  const pad = bridge.teacher.special.pad;
  const padded = sequences.map((s) => [...s, ...new Array<number>(width - s.length).fill(pad)]);
  const attention = sequences.map((s) => Array.from({ length: width }, (_, t) => (t < s.length ? 1 : 0)));
  const teacherTokens = tf.tensor2d(padded.flat(), [sequences.length, width], 'int32');
  const attentionMask = tf.tensor2d(attention.flat(), [sequences.length, width], 'float32');
  return { tokens: teacherTokens, attentionMask, rows, clipped, dispose: () => [teacherTokens, attentionMask].forEach((t) => t.dispose()) };
}

/**
 * A response whose teacher tokens pass the teacher's context, cut on both sides after the last
 * byte-aligned group that fits in `room` teacher tokens (no longer ended).
 */
function clipToGroups(
  studentTokens: readonly number[],
  bridged: BridgedResponse,
  room: number,
): { studentTokens: readonly number[]; bridged: BridgedResponse } {
  const groups = alignByByteOffsets(bridged.studentSpans, bridged.teacherSpans);
  let [ns, nt] = [0, 0];
  for (const [g, teacherGroup] of groups.teacher.entries()) {
    if (nt + teacherGroup.length > room) break;
    ns += (groups.student[g] as number[]).length;
    nt += teacherGroup.length;
  }
  return {
    studentTokens: studentTokens.slice(0, ns),
    bridged: {
      ...bridged,
      ended: false,
      teacherTokens: bridged.teacherTokens.slice(0, nt),
      studentSpans: bridged.studentSpans.slice(0, ns),
      teacherSpans: bridged.teacherSpans.slice(0, nt),
    },
  };
}

/** The teacher's logits for a teacher batch (none when no row has a response). */
export function teacherBatchLogits(teacher: LanguageModel, batch: TeacherBatch): tf.Tensor3D | undefined {
  return batch.rows.length > 0 ? teacher.logits(batch.tokens, { mask: batch.attentionMask }) : undefined;
}

export interface AlignedLossInput {
  readonly divergence: Divergence;
  readonly bridge: TokenizerBridge;
  /** (B, T, V_s) the student's logits over the batch's sequences. */
  readonly studentLogits: tf.Tensor3D;
  /** (B', T', V_t) the teacher's logits over `batch`'s sequences. */
  readonly teacherLogits: tf.Tensor3D | undefined;
  readonly batch: TeacherBatch;
  /** Per student row; absent: 1. */
  readonly sequenceWeights?: readonly number[];
  /** Responses in the whole step (micro-batches sum to the step's loss). */
  readonly normalizer: number;
}

/**
 * The loss across tokenizers: each response's value from the divergence's `aligned` (the mean over
 * its byte-aligned groups), weighted, summed and divided by the step's responses: the mean over
 * responses TRL's GOLD reports, split exactly over micro-batches.
 */
export function alignedLoss(input: AlignedLossInput): tf.Scalar {
  const { divergence, batch, studentLogits, teacherLogits } = input;
  if (!divergence.aligned)
    throw new SkdError(`divergence "${divergence.name}" cannot compare models with different tokenizers`, { hint: 'use uld, gold or alm' });
  if (batch.rows.length === 0 || !teacherLogits) return tf.tidy(() => tf.mul(tf.sum(studentLogits), 0) as tf.Scalar);
  return tf.tidy(() => {
    const [Vs, Vt] = [studentLogits.shape[2], teacherLogits.shape[2]];
    const responses: AlignedResponse[] = batch.rows.map((r, i) => ({
      // Row k scores token k: it is the logits one position before it.
      studentLogits: tf.reshape(tf.slice(studentLogits, [r.row, r.studentStart - 1, 0], [1, r.studentTokens.length, Vs]), [
        r.studentTokens.length,
        Vs,
      ]) as tf.Tensor2D,
      teacherLogits: tf.reshape(tf.slice(teacherLogits, [i, r.teacherStart - 1, 0], [1, r.bridged.teacherTokens.length, Vt]), [
        r.bridged.teacherTokens.length,
        Vt,
      ]) as tf.Tensor2D,
      studentTokens: r.studentTokens,
      teacherTokens: r.bridged.teacherTokens,
      studentSpans: r.bridged.studentSpans,
      teacherSpans: r.bridged.teacherSpans,
      ended: r.bridged.ended,
    }));
    const { values } = (divergence.aligned as NonNullable<Divergence['aligned']>)(responses, () => input.bridge.vocabularies());
    const weights = tf.tensor1d(batch.rows.map((r) => input.sequenceWeights?.[r.row] ?? 1));
    return tf.div(tf.sum(tf.mul(values, weights)), Math.max(input.normalizer, 1e-12)) as tf.Scalar;
  });
}
