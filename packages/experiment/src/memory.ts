import * as os from 'node:os';
import { createRegistries, type Run, type RunConfig } from '@skd/config';
import { SkdError } from '@skd/core';
import { estimateTrainingMemory, modelShape, type TrainingMemory } from '@skd/models';

/** The training data's longest prompt and example, in tokens (from checkTrainingData). */
export interface DataLengths {
  readonly longestPrompt: number;
  readonly longestExample: number;
}

/**
 * A run's expected peak memory: its models' shapes, the micro-batch, and the longest sequence it
 * trains on (the longest prompt plus the sampler's new tokens when it generates, else the longest
 * example). Undefined when the student is not a kind skd can measure.
 */
export function expectedRunMemory(config: RunConfig, run: Run, lengths: DataLengths): TrainingMemory | undefined {
  const student = modelShape(run.student);
  if (!student) return undefined;
  const teacher = run.teacher ? modelShape(run.teacher) : undefined;
  const options = samplerOptions(config.sampler.kind, config.sampler.options);
  const newTokens = typeof options.maxNewTokens === 'number' ? options.maxNewTokens : 0;
  const generates = config.sampler.kind !== 'supervised' && newTokens > 0;
  const sequenceLength = Math.min(run.student.contextLength, Math.max(lengths.longestExample, generates ? lengths.longestPrompt + newTokens : 0));
  const batchSize = config.training.batchSize;
  const keeps = config.sampler.kind.endsWith('skd') && options.cacheTeacherLogProbs !== false;
  const cachedTeacherFloats = keeps
    ? Math.min(typeof options.maxCachedTeacherFloats === 'number' ? options.maxCachedTeacherFloats : 64e6, batchSize * sequenceLength * student.vocab)
    : 0;
  return estimateTrainingMemory({
    student,
    ...(teacher ? { teacher } : {}),
    batchSize,
    sequenceLength,
    generates,
    cachedTeacherFloats,
    checkpointLayers: config.training.checkpointLayers,
    lossChunk: config.training.lossChunk,
  });
}

/** The sampler's options with its defaults filled in (a switch sampler's: the one it switches to). */
function samplerOptions(
  kind: string,
  raw: Record<string, unknown>,
): { maxNewTokens?: unknown; maxCachedTeacherFloats?: unknown; cacheTeacherLogProbs?: unknown } {
  const registry = createRegistries().sampler;
  if (!registry.has(kind)) return raw;
  const parsed = registry.get(kind, 'sampler.kind').options.safeParse(raw);
  if (!parsed.success) return raw;
  const options = parsed.data as { then?: { kind: string; options: Record<string, unknown> } };
  return options.then ? samplerOptions(options.then.kind, options.then.options) : (options as Record<string, unknown>);
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(bytes < 1e9 ? 2 : 1)} GB`;

/** One line: the total and what holds it. */
export function describeMemory(memory: TrainingMemory): string {
  const parts = [
    `student ${gb(memory.studentWeights)}`,
    `gradients and AdamW moments ${gb(memory.optimizer)}`,
    ...(memory.teacherWeights ? [`teacher ${gb(memory.teacherWeights)}`] : []),
    `activations ${gb(memory.activations)}`,
    `logits ${gb(memory.logits)}`,
    ...(memory.generation ? [`generation ${gb(memory.generation)}`] : []),
  ];
  return `~${gb(memory.total)} peak (${parts.join(', ')}); this machine has ${gb(os.totalmem())}`;
}

/** What the tensors of the wasm backend can hold: its heap stops at 4 GB. */
const WASM_HEAP = 4 * 2 ** 30;

/**
 * Refuses a run whose expected peak is more than the machine's memory, or than the wasm heap when
 * the run's backend is wasm, naming what to change.
 */
export function checkRunFits(memory: TrainingMemory, backend: string, totalMemory = os.totalmem()): void {
  if (backend === 'wasm' && memory.total - memory.runtime > WASM_HEAP) {
    throw new SkdError(`the run needs about ${gb(memory.total - memory.runtime)} of tensors at its peak, more than the wasm backend's 4 GB heap`, {
      hint: 'set backend: "native" (the same kernels over ordinary memory), or lower training.batchSize (raise training.gradientAccumulation to keep the batch)',
    });
  }
  if (memory.total <= totalMemory) return;
  const biggest = memory.activations + memory.logits > memory.optimizer + memory.studentWeights ? 'activations and logits' : 'the weights and optimizer state';
  throw new SkdError(`the run needs about ${gb(memory.total)} at its peak, more than this machine's ${gb(totalMemory)} (most of it ${biggest})`, {
    hint: 'lower training.batchSize (raise training.gradientAccumulation to keep the batch), shorten sampler.options.maxNewTokens, or use smaller teacher and student models',
  });
}
