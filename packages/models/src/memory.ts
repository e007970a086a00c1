import type { LanguageModel } from '@skd/core';
import { BigramModel } from './bigram-model';
import { DecoderModel, decoderShape } from './decoder';
import { GptModel } from './gpt';

const FLOAT = 4;

/** What a model's memory depends on: its parameters, and the widths its activations have per token. */
export interface ModelShape {
  readonly parameters: number;
  /** Bytes the weights are held in: 4 per parameter (the default), fewer for a teacher held in 16 bits. */
  readonly weightBytes?: number;
  /** Parameters that train (gradients and AdamW moments): all of them, or a LoRA student's adapters. Default: all. */
  readonly trainableParameters?: number;
  readonly layers: number;
  readonly dModel: number;
  /** Width of the MLP's hidden layer (the gated MLP's: one of its two halves). */
  readonly ffDim: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Logit columns. */
  readonly vocab: number;
  /** Whether the MLP is gated (its up-projection is twice ffDim wide). */
  readonly gated: boolean;
}

/** The shape of a built model, for the kinds skd knows; undefined for others (their memory is not estimated). */
export function modelShape(model: LanguageModel): ModelShape | undefined {
  const parameters = (model as { parameterCount?: number }).parameterCount;
  if (model instanceof DecoderModel) {
    const { headDim, kvHeads, dFf } = decoderShape(model.config);
    const { layers, dModel, heads } = model.config;
    let weightBytes = 0;
    for (const p of model.params.values()) weightBytes += FLOAT * p.size;
    for (const h of model.halves.values()) weightBytes += h.bytes;
    for (const v of model.lora?.variables.values() ?? []) weightBytes += FLOAT * v.size;
    return {
      parameters: parameters ?? 0,
      weightBytes,
      trainableParameters: model.trainableParameterCount,
      layers,
      dModel,
      ffDim: dFf,
      heads,
      kvHeads,
      headDim,
      vocab: model.vocabSize,
      gated: true,
    };
  }
  if (model instanceof GptModel) {
    const { layers, dModel, heads, dFf } = model.config;
    return {
      parameters: parameters ?? 0,
      layers,
      dModel,
      ffDim: dFf ?? 4 * dModel,
      heads,
      kvHeads: heads,
      headDim: dModel / heads,
      vocab: model.vocabSize,
      gated: false,
    };
  }
  if (model instanceof BigramModel) {
    const V = model.vocabSize;
    return { parameters: V * V, layers: 0, dModel: V, ffDim: 0, heads: 0, kvHeads: 0, headDim: 0, vocab: V, gated: false };
  }
  return undefined;
}

export interface TrainingMemoryInput {
  readonly student: ModelShape;
  readonly teacher?: ModelShape;
  /** Sequences per micro-batch. */
  readonly batchSize: number;
  /** The longest training sequence, prompt and response (generated or reference) together. */
  readonly sequenceLength: number;
  /** Whether the sampler generates (a KV cache per model while sampling). */
  readonly generates: boolean;
  /** Floats of teacher distributions a sampler keeps from generation for the loss (SKD's cache), at most. */
  readonly cachedTeacherFloats?: number;
  /** Gradient checkpointing per block: only each block's input is kept, and one block's activations at a time. */
  readonly checkpointLayers?: boolean;
  /** Target positions per slice of the vocabulary loss (training.lossChunk); 0 or unset: the whole batch. */
  readonly lossChunk?: number;
}

/** A training step's peak memory, by what holds it (bytes). */
export interface TrainingMemory {
  readonly studentWeights: number;
  /** Gradients and AdamW's two moments of every trainable weight. */
  readonly optimizer: number;
  readonly teacherWeights: number;
  /** What backpropagation keeps of every layer's forward pass, over the micro-batch. */
  readonly activations: number;
  /** Logits over the vocabulary: the student's, their softmax and gradient, the teacher's distributions. */
  readonly logits: number;
  /** KV caches while sampling (freed before the loss). */
  readonly generation: number;
  /** Node.js, TensorFlow.js and the native kernels before any tensor. */
  readonly runtime: number;
  readonly total: number;
}

const RUNTIME_BYTES = 350e6;
const ALLOCATOR_SLACK = 1.1;

/**
 * The peak memory of a training step, estimated from the shapes (float32 everywhere but a 16-bit
 * teacher's weight matrices). Per token and layer, backpropagation keeps the inputs and outputs of the norms,
 * the projected and rotated q/k/v, the attention output and its probabilities over the sequence,
 * the MLP's up-projection, its activation and the residual stream; over the vocabulary, the
 * student's logits, their softmax and gradient, and the teacher's log-probabilities. Generation's
 * KV caches are freed before the loss, so the peak takes the larger of the two phases.
 */
export function estimateTrainingMemory(input: TrainingMemoryInput): TrainingMemory {
  const { student, teacher, batchSize, sequenceLength } = input;
  const tokens = batchSize * sequenceLength;
  const qkv = (student.heads + 2 * student.kvHeads) * student.headDim;
  // Attention keeps its probabilities over the sequence, and its backward makes their gradient beside them.
  const perTokenLayer =
    4 * student.dModel + 2 * qkv + 2 * student.heads * student.headDim + (student.gated ? 3 : 2) * student.ffDim + 2 * student.heads * sequenceLength;
  // Freed buffers a backend keeps for reuse, and the backward's transients, measured at about a tenth more.
  // The backward pass holds one layer's gradients beside what is kept: one more layer's worth.
  const blocksHeld = input.checkpointLayers ? Math.min(student.layers, 2) : student.layers + (student.layers > 0 ? 1 : 0);
  const inputsKept = input.checkpointLayers ? FLOAT * tokens * student.layers * student.dModel : 0;
  const activations = ALLOCATOR_SLACK * FLOAT * tokens * blocksHeld * perTokenLayer + inputsKept;
  // The student's logits, softmax and gradient over the batch, or over one slice with lossChunk; the teacher's over the batch.
  const studentRows = input.lossChunk ? Math.min(input.lossChunk, tokens) : tokens;
  const logits = FLOAT * student.vocab * (3 * studentRows + (teacher ? tokens : 0));
  const cache = (m: ModelShape) => FLOAT * 2 * m.layers * m.kvHeads * m.headDim * tokens;
  const generation = input.generates ? cache(student) + (teacher ? cache(teacher) : 0) + FLOAT * (input.cachedTeacherFloats ?? 0) : 0;
  const studentWeights = student.weightBytes ?? FLOAT * student.parameters;
  const optimizer = 3 * FLOAT * (student.trainableParameters ?? student.parameters);
  const teacherWeights = teacher ? (teacher.weightBytes ?? FLOAT * teacher.parameters) : 0;
  const total = RUNTIME_BYTES + studentWeights + optimizer + teacherWeights + Math.max(activations + logits, generation);
  return { studentWeights, optimizer, teacherWeights, activations, logits, generation, runtime: RUNTIME_BYTES, total };
}

/** The process's peak resident memory so far (bytes). */
export function peakResidentBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
