import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Subject } from 'rxjs';
import {
  NonFiniteError,
  type Rng,
  SkdError,
  type DatasetSource,
  type Divergence,
  type Evaluator,
  type KdBatch,
  type KdSampler,
  type LanguageModel,
  type RngState,
  type RunEvent,
  type Tokenizer,
} from '@skd/core';
import { countTargets, tokenLoss } from '@skd/divergences';
import { evaluateModel, referencePerplexity, teacherAcceptance } from '@skd/evaluators';
import { readSafetensors, writeFileAtomic, writeSafetensors, type NamedArray } from '@skd/models';
import { assembleBatch } from '@skd/samplers';
import { BatchStream, take } from './data-stream';
import { AdamW, clipByGlobalNorm, learningRateAt } from './optimizer';

export interface TrainingOptions {
  readonly steps: number;
  readonly batchSize: number;
  readonly gradientAccumulation: number;
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly schedule: 'constant' | 'linear' | 'cosine';
  readonly warmupSteps: number;
  readonly gradientClip: number;
  readonly evalEvery: number;
  readonly evalLimit: number;
  readonly maxNewTokens: number;
  readonly checkpointEvery: number;
  /** Training examples longer than the student's context: stop (default) or skip them. */
  readonly onTooLong?: 'fail' | 'skip';
  /** Watched by the caller (see `earlyStopping` in stages.ts), which then signals `earlyStop`. */
  readonly earlyStopping?: { readonly metric: string; readonly patience: number; readonly mode: 'max' | 'min' } | undefined;
}

/** What a training run is made of; the composition root builds these from a config. */
export interface TrainerParts {
  readonly student: LanguageModel;
  readonly teacher: LanguageModel | undefined;
  readonly tokenizer: Tokenizer;
  readonly sampler: KdSampler;
  readonly divergence: Divergence;
  readonly dataset: DatasetSource;
  readonly evaluators: readonly Evaluator[];
  /** Every component's random stream by config path (saved in checkpoints). */
  readonly rngs: ReadonlyMap<string, Rng>;
  readonly training: TrainingOptions;
  readonly runId: string;
  readonly backend: string;
}

export interface TrainOptions {
  /** Folder for checkpoints and evaluation outputs; none: nothing is written. */
  readonly runDir?: string;
  /** Continue from the newest complete checkpoint in runDir. */
  readonly resume?: boolean;
  /** Abort: the current step finishes, a checkpoint is written, the run ends "cancelled". */
  readonly signal?: AbortSignal;
  /** Early stop: like abort, but the run then evaluates on the test split and ends "early-stopped". */
  readonly earlyStop?: AbortSignal;
}

export interface TrainResult {
  readonly step: number;
  readonly reason: 'completed' | 'cancelled' | 'early-stopped';
  readonly finalMetrics: Record<string, number>;
  readonly lastCheckpoint: string | undefined;
}

interface CheckpointState {
  readonly step: number;
  readonly optimizerStep: number;
  readonly consumedBatches: number;
  readonly rngs: Record<string, RngState>;
  readonly sampler: unknown;
}

/** A run whose loss stopped being finite. The last good checkpoint is kept. */
export class DivergedError extends SkdError {
  override readonly name = 'DivergedError';
}

/**
 * The distillation loop. One step: sample (per micro-batch) with the configured sampler, run the
 * student (and the teacher, unless the sampler kept its distributions), the shared token loss
 * normalised by the whole step's target count, clip, AdamW. Events go out on `events$` as plain
 * numbers; evaluation and checkpoints happen on their schedules.
 */
export class Trainer {
  readonly events$ = new Subject<RunEvent>();
  private readonly optimizer: AdamW;
  private readonly stream: BatchStream;

  constructor(private readonly parts: TrainerParts) {
    const t = parts.training;
    if (parts.divergence.needsTeacher && !parts.teacher) {
      throw new SkdError(`divergence "${parts.divergence.name}" needs a teacher model`, { hint: 'add "teacher" to the config, or use the "cross-entropy" divergence' });
    }
    this.optimizer = new AdamW(parts.student.trainableVariables, t);
    this.stream = new BatchStream(parts.dataset, { tokenizer: parts.tokenizer, batchSize: t.batchSize, contextLength: parts.student.contextLength, onTooLong: t.onTooLong ?? 'fail' });
  }

  async run(options: TrainOptions = {}): Promise<TrainResult> {
    const t = this.parts.training;
    let step = 0;
    let lastCheckpoint: string | undefined;
    if (options.resume && options.runDir) {
      const latest = latestCheckpoint(options.runDir);
      if (latest) {
        step = await this.restore(latest);
        lastCheckpoint = latest;
      }
    }
    this.events$.next({ type: 'run-started', runId: this.parts.runId, totalSteps: t.steps, startStep: step, backend: this.parts.backend, time: Date.now() });
    while (step < t.steps) {
      await this.trainStep(step);
      step += 1;
      if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < t.steps) await this.evaluate(step, 'eval', options.runDir);
      const stop = options.signal?.aborted === true;
      const early = options.earlyStop?.aborted === true;
      if (options.runDir && ((t.checkpointEvery > 0 && step % t.checkpointEvery === 0) || step === t.steps || stop || early)) {
        lastCheckpoint = await this.checkpoint(step, options.runDir);
      }
      if (stop) {
        this.events$.next({ type: 'run-ended', step, reason: 'cancelled', message: lastCheckpoint ? `checkpoint ${lastCheckpoint}` : 'nothing written' });
        return { step, reason: 'cancelled', finalMetrics: {}, lastCheckpoint };
      }
      if (early) {
        const finalMetrics = await this.evaluate(step, 'test', options.runDir);
        this.events$.next({ type: 'run-ended', step, reason: 'early-stopped' });
        return { step, reason: 'early-stopped', finalMetrics, lastCheckpoint };
      }
    }
    const finalMetrics = await this.evaluate(step, 'test', options.runDir);
    this.events$.next({ type: 'run-ended', step, reason: 'completed' });
    return { step, reason: 'completed', finalMetrics, lastCheckpoint };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.events$.complete();
  }

  private async trainStep(step: number): Promise<void> {
    const t = this.parts.training;
    const started = Date.now();
    const batches: KdBatch[] = [];
    try {
      for (let micro = 0; micro < t.gradientAccumulation; micro++) {
        const prompts = await this.stream.next();
        try {
          batches.push(await this.parts.sampler.sample(prompts, { step, totalSteps: t.steps }));
        } catch (error) {
          if (!(error instanceof NonFiniteError)) throw error;
          this.diverged(step, `sampling failed at step ${step}: ${error.message}`);
        }
      }
      const targets = batches.reduce((n, b) => n + countTargets(b.targetMask), 0);
      const variables = this.parts.student.trainableVariables;
      let sums: tf.Tensor[] | undefined;
      let loss = 0;
      for (const [micro, batch] of batches.entries()) {
        const teacherLogits = this.teacherLogits(batch);
        const { value, grads } = tf.variableGrads(
          () =>
            tokenLoss({
              divergence: this.parts.divergence,
              tokens: batch.tokens,
              targetMask: batch.targetMask,
              studentLogits: this.parts.student.logits(batch.tokens, { mask: batch.attentionMask, training: true, seed: step * 1009 + micro }),
              ...(batch.teacherLogProbs ? { teacherLogProbs: batch.teacherLogProbs } : teacherLogits ? { teacherLogits } : {}),
              ...(batch.sequenceWeights ? { sequenceWeights: batch.sequenceWeights } : {}),
              normalizer: targets,
            }),
          [...variables],
        );
        teacherLogits?.dispose();
        loss += (await value.data())[0] as number;
        value.dispose();
        const ordered = variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
        if (!sums) sums = ordered;
        else {
          const next = sums.map((s, i) => tf.add(s, ordered[i] as tf.Tensor));
          [...sums, ...ordered].forEach((g) => g.dispose());
          sums = next;
        }
      }
      if (!Number.isFinite(loss)) {
        sums?.forEach((g) => g.dispose());
        this.diverged(step, `loss became ${loss} at step ${step}`);
      }
      const { grads, norm } = clipByGlobalNorm(sums as tf.Tensor[], t.gradientClip);
      const learningRate = learningRateAt(step, t.steps, t);
      this.optimizer.apply(grads, learningRate);
      grads.forEach((g) => g.dispose());
      const seconds = (Date.now() - started) / 1000;
      this.events$.next({
        type: 'step',
        step: step + 1,
        totalSteps: t.steps,
        loss,
        learningRate,
        gradNorm: norm,
        tokens: targets,
        tokensPerSecond: targets / Math.max(seconds, 1e-9),
        seconds,
        sampler: averageStats(batches.map((b) => b.stats)),
      });
    } finally {
      batches.forEach((b) => b.dispose());
    }
  }

  private diverged(step: number, message: string): never {
    this.events$.next({ type: 'run-ended', step, reason: 'diverged', message });
    throw new DivergedError(message, { hint: 'lower the learning rate or the temperature, or enable gradientClip; the last good checkpoint is kept' });
  }

  /** The teacher's logits for a batch, unless the divergence needs none or the sampler kept them. */
  private teacherLogits(batch: KdBatch): tf.Tensor3D | undefined {
    if (!this.parts.divergence.needsTeacher || batch.teacherLogProbs || !this.parts.teacher) return undefined;
    return this.parts.teacher.logits(batch.tokens, { mask: batch.attentionMask });
  }

  /** Greedy generation on a split (eval during training, test at the end), every evaluator, and the validation loss. */
  private async evaluate(step: number, split: 'eval' | 'test', runDir: string | undefined): Promise<Record<string, number>> {
    const t = this.parts.training;
    const dataset = take(this.parts.dataset.split(split), t.evalLimit);
    const { metrics, predictions } = await evaluateModel({
      model: this.parts.student,
      tokenizer: this.parts.tokenizer,
      dataset,
      evaluators: this.parts.evaluators,
      batchSize: t.batchSize,
      maxNewTokens: t.maxNewTokens,
      onProgress: (done, total) => this.events$.next({ type: 'progress', phase: `eval ${split}`, done, total: total ?? done }),
    });
    const validationLoss = await this.validationLoss(predictions.map((p) => p.example));
    const all: Record<string, number> = { ...metrics, ...(validationLoss !== undefined ? { validationLoss } : {}) };
    if (split === 'test') {
      // At the end: the student's perplexity of the references, and how often the teacher ranks the
      // student's greedy tokens in its top-25 (the paper's K), a direct measure of agreement.
      const { tokenizer, student, teacher } = this.parts;
      all['perplexity'] = (await referencePerplexity(student, tokenizer, dataset, t.batchSize))['perplexity'] as number;
      if (teacher) {
        all['teacherAcceptance'] = (await teacherAcceptance(teacher, student, tokenizer, dataset, { topK: 25, batchSize: t.batchSize, maxNewTokens: t.maxNewTokens }))['teacherAcceptance'] as number;
      }
    }
    if (validationLoss !== undefined) this.parts.sampler.observe?.({ step, validationLoss });
    if (runDir) {
      const lines = predictions.map((p) => JSON.stringify({ id: p.example.id, prompt: p.example.prompt, reference: p.example.response, prediction: p.text }));
      writeFileAtomic(path.join(runDir, 'eval', `${split}-step-${String(step).padStart(6, '0')}.jsonl`), lines.join('\n') + '\n');
    }
    this.events$.next({ type: 'eval', step, split, metrics: all });
    return all;
  }

  /**
   * The training loss on references (teacher-forced), for DistiLLM's schedule and the report: the
   * divergence summed over every target token of the examples, in micro-batches of the training batch
   * size (one batch of a whole evaluation set can exhaust the wasm heap), over the total count.
   */
  private async validationLoss(examples: readonly { prompt: string; response: string }[]): Promise<number | undefined> {
    if (examples.length === 0 || (this.parts.divergence.needsTeacher && !this.parts.teacher)) return undefined;
    const { tokenizer, student, teacher, divergence, training } = this.parts;
    const bos = tokenizer.special.bos !== undefined ? [tokenizer.special.bos] : [];
    const rows = examples
      .map((e) => ({ prompt: [...bos, ...tokenizer.encode(e.prompt)], response: [...tokenizer.encode(e.response), tokenizer.special.eos] }))
      .filter((r) => r.prompt.length + r.response.length <= student.contextLength);
    if (rows.length === 0) return undefined;
    // Every response token (EOS included) is a target: prompts are never empty, so each has a token before it.
    const normalizer = rows.reduce((n, r) => n + r.response.length, 0);
    let loss = 0;
    for (let i = 0; i < rows.length; i += training.batchSize) {
      const batch = assembleBatch(rows.slice(i, i + training.batchSize), tokenizer.special.pad, student.contextLength);
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

  /** Writes step-NNNNNN under runDir/checkpoints atomically (temporary folder, then rename). */
  private async checkpoint(step: number, runDir: string): Promise<string> {
    const dir = path.join(runDir, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
    if (fs.existsSync(dir)) return dir;
    const tmp = `${dir}.partial-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const arrays = new Map<string, NamedArray>();
    const add = async (name: string, tensor: tf.Tensor) => arrays.set(name, { shape: tensor.shape, data: Float32Array.from(await tensor.data()) });
    for (const [i, v] of this.parts.student.trainableVariables.entries()) await add(`student/${String(i).padStart(4, '0')}`, v);
    const optimizer = this.optimizer.state();
    for (const [name, tensor] of optimizer.tensors) await add(name, tensor);
    writeSafetensors(path.join(tmp, 'state.safetensors'), arrays);
    const state: CheckpointState = {
      step,
      optimizerStep: optimizer.step,
      consumedBatches: this.stream.consumed,
      rngs: Object.fromEntries([...this.parts.rngs].map(([k, rng]) => [k, rng.getState()])),
      sampler: this.parts.sampler.getState?.() ?? null,
    };
    writeFileAtomic(path.join(tmp, 'state.json'), JSON.stringify(state));
    fs.renameSync(tmp, dir);
    this.events$.next({ type: 'checkpoint', step, path: dir });
    return dir;
  }

  private async restore(dir: string): Promise<number> {
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
    const { arrays } = readSafetensors(path.join(dir, 'state.safetensors'));
    const variables = this.parts.student.trainableVariables;
    variables.forEach((v, i) => {
      const saved = arrays.get(`student/${String(i).padStart(4, '0')}`);
      if (!saved || saved.shape.join() !== v.shape.join()) {
        throw new SkdError(`checkpoint ${dir} does not match the student: variable ${i} should have shape [${v.shape.join(', ')}]`, { hint: 'resume with the config the run was started with' });
      }
      tf.tidy(() => v.assign(tf.tensor(saved.data, [...saved.shape])));
    });
    const moments = new Map([...arrays].filter(([name]) => name.startsWith('adam/')).map(([name, a]) => [name, tf.tensor(a.data, [...a.shape])]));
    this.optimizer.load(state.optimizerStep, moments);
    moments.forEach((m) => m.dispose());
    for (const [key, rngState] of Object.entries(state.rngs)) this.parts.rngs.get(key)?.setState(rngState);
    if (state.sampler !== null) this.parts.sampler.setState?.(state.sampler as never);
    await this.stream.skip(state.consumedBatches);
    return state.step;
  }
}

/** The newest complete checkpoint folder (partial ones never count). */
export function latestCheckpoint(runDir: string): string | undefined {
  const dir = path.join(runDir, 'checkpoints');
  if (!fs.existsSync(dir)) return undefined;
  const complete = fs.readdirSync(dir).filter((name) => /^step-\d{6}$/.test(name) && fs.existsSync(path.join(dir, name, 'state.json')));
  return complete.length ? path.join(dir, complete.sort()[complete.length - 1] as string) : undefined;
}

function averageStats(all: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const stats of all) for (const [k, v] of Object.entries(stats)) sums[k] = (sums[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / all.length]));
}
