import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Subject } from 'rxjs';
import {
  FormatError,
  InterruptedError,
  NonFiniteError,
  type Rng,
  ConfigError,
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
  yieldToEventLoop,
} from '@skd/core';
import { chunkedTokenLoss, countTargetRows, countTargets, tokenLoss } from '@skd/divergences';
import {
  forEachSafetensor,
  partialFolders,
  streamedTensors,
  tokenizerBridge,
  writeFileAtomic,
  writeFolderAtomic,
  writeSafetensorsStreaming,
  type TokenizerBridge,
} from '@skd/models';
import { alignedLoss, teacherBatch, teacherBatchLogits } from './cross-tokenizer';
import { BatchStream, evaluationSubset } from './data-stream';
import { evaluateSplit, writeEvaluation } from './evaluation';
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
  /** How the step's token losses are averaged: over target tokens (default) or per response, then over responses. */
  readonly lossReduction?: 'tokens' | 'sequences';
  readonly evalEvery: number;
  readonly evalLimit: number;
  /** Test examples evaluated at the end; unset: the whole test split. */
  readonly testLimit?: number | undefined;
  /** Which examples the limits keep: a seeded sample shared by every run (default), or the first in the file. */
  readonly evalOrder?: 'sample' | 'file' | undefined;
  readonly maxNewTokens: number;
  readonly checkpointEvery: number;
  /** Training examples longer than the student's context: stop (default) or skip them. */
  readonly onTooLong?: 'fail' | 'skip';
  /** Gradient checkpointing per block (the student must support it: `checkpointsLayers`). */
  readonly checkpointLayers?: boolean;
  /** Target positions per slice of the vocabulary loss (chunkedTokenLoss; the student must expose `features`); 0 or unset: whole. */
  readonly lossChunk?: number;
  /** Batches read at a time and regrouped by length (see BatchStream); 0: off. */
  readonly groupByLength?: number;
  /** Watched by the caller (see `earlyStopping` in stages.ts), which then signals `earlyStop`. */
  readonly earlyStopping?: { readonly metric: string; readonly patience: number; readonly mode: 'max' | 'min' } | undefined;
}

/** What a training run is made of; the composition root builds these from a config. */
/**
 * What the trainer needs of a run: its components, every component's random stream, its training
 * options and its backend. A `Run` from `buildRun` (@skd/config) is one as it is; a program that
 * builds its components by hand writes the same shape.
 */
export interface TrainerRun {
  readonly student: LanguageModel;
  readonly teacher: LanguageModel | undefined;
  readonly tokenizer: Tokenizer;
  /** The teacher's own tokenizer, when it differs from the student's: the loss is then computed across tokenizers. */
  readonly teacherTokenizer?: Tokenizer | undefined;
  readonly sampler: KdSampler;
  readonly divergence: Divergence;
  readonly dataset: DatasetSource;
  readonly evaluators: readonly Evaluator[];
  /** Every component's random stream by config path (saved in checkpoints). */
  readonly componentRngs: ReadonlyMap<string, Rng>;
  readonly config: { readonly training: TrainingOptions };
  readonly backend: { readonly name: string };
}

export interface TrainOptions {
  /** Folder for checkpoints and evaluation outputs; none: nothing is written. */
  readonly runDir?: string;
  /** The run's name in its events (default: the run folder's name, or "run"). */
  readonly runId?: string;
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
  /** 95% bootstrap intervals of the final test metrics (those whose evaluators have statistics). */
  readonly finalIntervals: Record<string, [number, number]>;
  /** The final test's bootstrap scores (eval/test-step-N.bootstrap.json, for paired tests), if written. */
  readonly bootstrapFile: string | undefined;
  readonly lastCheckpoint: string | undefined;
}

interface EvaluationResult {
  readonly metrics: Record<string, number>;
  readonly intervals: Record<string, [number, number]>;
  readonly bootstrapFile: string | undefined;
}

interface CheckpointState {
  readonly step: number;
  readonly optimizerStep: number;
  readonly consumedBatches: number;
  readonly rngs: Record<string, RngState>;
  readonly sampler: unknown;
  /** The divergence's state (TAID's schedule); absent in checkpoints of divergences without one. */
  readonly divergence?: unknown;
  /** SHA-256 of state.safetensors, verified on resume; a checkpoint without one is read unverified. */
  readonly sha256?: string;
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
  /** Set when the teacher reads its own tokenizer: the loss compares byte-aligned responses. */
  private readonly bridge: TokenizerBridge | undefined;
  private clipWarned = false;

  constructor(private readonly parts: TrainerRun) {
    const t = parts.config.training;
    if (t.checkpointLayers && !parts.student.checkpointsLayers) {
      throw new ConfigError('config', [
        {
          path: 'training.checkpointLayers',
          message: 'this student model does not checkpoint its blocks (skd GPTs and Llama-family decoders do); set training.checkpointLayers: false',
        },
      ]);
    }
    if ((t.lossChunk ?? 0) > 0 && !(parts.student.features && parts.student.outputLayer)) {
      throw new ConfigError('config', [
        {
          path: 'training.lossChunk',
          message: 'this student model does not expose its output layer apart (skd GPTs and Llama-family decoders do); set training.lossChunk: 0',
        },
      ]);
    }
    if (parts.divergence.needsTeacher && !parts.teacher) {
      throw new SkdError(`divergence "${parts.divergence.name}" needs a teacher model`, {
        hint: 'add "teacher" to the config, or use the "cross-entropy" divergence',
      });
    }
    this.bridge = crossTokenizerBridge(parts);
    this.optimizer = new AdamW(parts.student.trainableVariables, t);
    this.stream = new BatchStream(parts.dataset, {
      tokenizer: parts.tokenizer,
      batchSize: t.batchSize,
      contextLength: parts.student.contextLength,
      onTooLong: t.onTooLong ?? 'fail',
      groupByLength: t.groupByLength ?? 0,
    });
  }

  async run(options: TrainOptions = {}): Promise<TrainResult> {
    const t = this.parts.config.training;
    let step = 0;
    let lastCheckpoint: string | undefined;
    if (options.resume && options.runDir) {
      const leftovers = [...partialFolders(path.join(options.runDir, 'checkpoints')), ...partialFolders(options.runDir)];
      for (const dir of leftovers) fs.rmSync(dir, { recursive: true, force: true });
      if (leftovers.length) this.warn(`removed ${leftovers.length} unfinished checkpoint folder(s) left by an interrupted write`);
      // The newest checkpoint that verifies: a truncated or altered one is named and skipped, never loaded.
      const all = checkpointFolders(options.runDir);
      const unusable: string[] = [];
      for (const dir of [...all].reverse()) {
        try {
          step = await this.restore(dir);
          lastCheckpoint = dir;
          break;
        } catch (error) {
          if (!(error instanceof FormatError)) throw error;
          this.warn(`checkpoint ${path.basename(dir)} cannot be used (${error.message}); trying the one before`);
          unusable.push(dir);
        }
      }
      if (!lastCheckpoint && all.length > 0) {
        throw new SkdError(`no checkpoint of ${options.runDir} verifies`, {
          hint: 'start the run again in a new --out (or delete its checkpoints/ folder to restart it from step 0)',
        });
      }
      // Kept for inspection under another name; the steps they held are trained (and checkpointed) again.
      for (const dir of unusable) fs.renameSync(dir, `${dir}.unusable-${Date.now()}`);
    }
    this.events$.next({
      type: 'run-started',
      runId: options.runId ?? (options.runDir ? path.basename(options.runDir) : 'run'),
      totalSteps: t.steps,
      startStep: step,
      backend: this.parts.backend.name,
      time: Date.now(),
    });
    const { runDir, signal } = options;
    const cancelled = (): TrainResult => {
      this.events$.next({ type: 'run-ended', step, reason: 'cancelled', message: lastCheckpoint ? `checkpoint ${lastCheckpoint}` : 'nothing written' });
      return { step, reason: 'cancelled', finalMetrics: {}, finalIntervals: {}, bootstrapFile: undefined, lastCheckpoint };
    };
    try {
      while (step < t.steps) {
        await this.trainStep(step);
        step += 1;
        // Tensor work never gives the event loop a turn by itself: without this, Ctrl-C is heard only when training ends.
        await yieldToEventLoop();
        if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < t.steps) await this.evaluate(step, 'eval', runDir, signal);
        const stop = signal?.aborted === true;
        const early = options.earlyStop?.aborted === true;
        if (runDir && ((t.checkpointEvery > 0 && step % t.checkpointEvery === 0) || step === t.steps || stop || early)) {
          lastCheckpoint = await this.checkpoint(step, runDir);
        }
        if (stop) return cancelled();
        if (early) {
          const final = await this.evaluate(step, 'test', runDir, signal);
          this.events$.next({ type: 'run-ended', step, reason: 'early-stopped' });
          return {
            step,
            reason: 'early-stopped',
            finalMetrics: final.metrics,
            finalIntervals: final.intervals,
            bootstrapFile: final.bootstrapFile,
            lastCheckpoint,
          };
        }
      }
      const final = await this.evaluate(step, 'test', runDir, signal);
      this.events$.next({ type: 'run-ended', step, reason: 'completed' });
      return { step, reason: 'completed', finalMetrics: final.metrics, finalIntervals: final.intervals, bootstrapFile: final.bootstrapFile, lastCheckpoint };
    } catch (error) {
      if (!(error instanceof InterruptedError)) throw error;
      // Interrupted during an evaluation: the weights after `step` are kept. A resume runs an interrupted
      // final evaluation again; an interrupted mid-run evaluation is skipped (its step is past).
      if (runDir) lastCheckpoint = await this.checkpoint(step, runDir);
      return cancelled();
    }
  }

  dispose(): void {
    this.optimizer.dispose();
    this.events$.complete();
  }

  private async trainStep(step: number): Promise<void> {
    const t = this.parts.config.training;
    const started = Date.now();
    const phases = { sample: 0, teacher: 0, student: 0, update: 0 };
    const since = (phase: keyof typeof phases, from: number): void => {
      phases[phase] += (performance.now() - from) / 1000;
    };
    const batches: KdBatch[] = [];
    try {
      for (let micro = 0; micro < t.gradientAccumulation; micro++) {
        const prompts = await this.stream.next();
        try {
          const from = performance.now();
          batches.push(await this.parts.sampler.sample(prompts, { step, totalSteps: t.steps }));
          since('sample', from);
        } catch (error) {
          if (!(error instanceof NonFiniteError)) throw error;
          this.diverged(step, `sampling failed at step ${step}: ${error.message}`);
        }
      }
      const targets = batches.reduce((n, b) => n + countTargets(b.targetMask), 0);
      // The whole step's count, so micro-batches sum to the loss of the full batch. Across tokenizers
      // each response's value is already a mean over its aligned groups: the step averages responses.
      const bySequence = t.lossReduction === 'sequences';
      const normalizer = bySequence || this.bridge ? batches.reduce((n, b) => n + countTargetRows(b.targetMask), 0) : targets;
      const variables = this.parts.student.trainableVariables;
      let sums: tf.Tensor[] | undefined;
      let loss = 0;
      for (const [micro, batch] of batches.entries()) {
        if (this.bridge) {
          loss += await this.crossTokenizerStep(batch, step * 1009 + micro, normalizer, since, (grads) => (sums = addGrads(sums, grads)));
          continue;
        }
        const teacherFrom = performance.now();
        const teacherLogits = this.teacherLogits(batch);
        if (teacherLogits) since('teacher', teacherFrom);
        const forward = { mask: batch.attentionMask, training: true, seed: step * 1009 + micro, ...(t.checkpointLayers ? { checkpointLayers: true } : {}) };
        const common = {
          divergence: this.parts.divergence,
          tokens: batch.tokens,
          targetMask: batch.targetMask,
          ...(batch.teacherLogProbs ? { teacherLogProbs: batch.teacherLogProbs } : teacherLogits ? { teacherLogits } : {}),
          ...(batch.sequenceWeights ? { sequenceWeights: batch.sequenceWeights } : {}),
          normalizer,
          ...(bySequence ? { reduction: 'sequences' as const } : {}),
        };
        const student = this.parts.student;
        const studentFrom = performance.now();
        const { value, grads } = tf.variableGrads(
          () =>
            (t.lossChunk ?? 0) > 0 && student.features && student.outputLayer
              ? chunkedTokenLoss({
                  ...common,
                  studentFeatures: student.features(batch.tokens, forward),
                  outputLayer: student.outputLayer,
                  chunk: t.lossChunk as number,
                })
              : tokenLoss({ ...common, studentLogits: student.logits(batch.tokens, forward) }),
          [...variables],
        );
        teacherLogits?.dispose();
        loss += (await value.data())[0] as number;
        value.dispose();
        since('student', studentFrom);
        sums = addGrads(
          sums,
          variables.map((v) => grads[v.name] ?? tf.zerosLike(v)),
        );
      }
      if (!Number.isFinite(loss)) {
        sums?.forEach((g) => g.dispose());
        this.diverged(step, `loss became ${loss} at step ${step}`);
      }
      const learningRate = learningRateAt(step, t.steps, t);
      const updateFrom = performance.now();
      const { grads, norm } = await clipByGlobalNorm(sums as tf.Tensor[], t.gradientClip);
      this.optimizer.apply(grads, learningRate);
      grads.forEach((g) => g.dispose());
      since('update', updateFrom);
      const divergence = this.parts.divergence;
      const divergenceStats = divergence.stats?.(); // what this step used
      divergence.observe?.({ step, totalSteps: t.steps, loss });
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
        phases,
        sampler: averageStats(batches.map((b) => b.stats)),
        ...(divergenceStats ? { divergence: divergenceStats } : {}),
      });
    } finally {
      batches.forEach((b) => b.dispose());
    }
  }

  /**
   * One micro-batch across tokenizers: its rows carried to the teacher's tokens, the teacher's logits
   * there, and the divergence's aligned loss of the student's logits; gradients go to `accumulate`.
   */
  private async crossTokenizerStep(
    batch: KdBatch,
    seed: number,
    normalizer: number,
    since: (phase: 'teacher' | 'student', from: number) => void,
    accumulate: (grads: tf.Tensor[]) => void,
  ): Promise<number> {
    const t = this.parts.config.training;
    const bridge = this.bridge as TokenizerBridge;
    const teacher = this.parts.teacher as LanguageModel;
    const teacherFrom = performance.now();
    const view = teacherBatch(batch.tokens, batch.targetMask, bridge, teacher);
    if (view.clipped > 0 && !this.clipWarned) {
      this.clipWarned = true;
      this.warn(
        `${view.clipped} response(s) of a batch pass the teacher's context (${teacher.contextLength} of its tokens, prompt included): each is compared up to the last group of tokens, aligned by bytes, that fits (said once per run)`,
      );
    }
    try {
      const teacherLogits = teacherBatchLogits(teacher, view);
      since('teacher', teacherFrom);
      const studentFrom = performance.now();
      const forward = { mask: batch.attentionMask, training: true, seed, ...(t.checkpointLayers ? { checkpointLayers: true } : {}) };
      const variables = this.parts.student.trainableVariables;
      const { value, grads } = tf.variableGrads(
        () =>
          alignedLoss({
            divergence: this.parts.divergence,
            bridge,
            studentLogits: this.parts.student.logits(batch.tokens, forward),
            teacherLogits,
            batch: view,
            ...(batch.sequenceWeights ? { sequenceWeights: batch.sequenceWeights } : {}),
            normalizer,
          }),
        [...variables],
      );
      teacherLogits?.dispose();
      const loss = (await value.data())[0] as number;
      value.dispose();
      since('student', studentFrom);
      accumulate(variables.map((v) => grads[v.name] ?? tf.zerosLike(v)));
      return loss;
    } finally {
      view.dispose();
    }
  }

  private diverged(step: number, message: string): never {
    this.events$.next({ type: 'run-ended', step, reason: 'diverged', message });
    throw new DivergedError(message, {
      hint: 'lower training.learningRate or divergence.options.temperature, or set training.gradientClip (e.g. 1); the last good checkpoint is kept',
    });
  }

  /** The teacher's logits for a batch, unless the divergence needs none or the sampler kept them. */
  private teacherLogits(batch: KdBatch): tf.Tensor3D | undefined {
    if (!this.parts.divergence.needsTeacher || batch.teacherLogProbs || !this.parts.teacher) return undefined;
    return this.parts.teacher.logits(batch.tokens, { mask: batch.attentionMask });
  }

  /**
   * Greedy generation on a split (eval during training, the test split at the end), every evaluator
   * with 95% bootstrap intervals, and the validation loss; the test evaluation also writes the
   * bootstrap scores that paired tests between runs read.
   */
  private async evaluate(step: number, split: 'eval' | 'test', runDir: string | undefined, signal: AbortSignal | undefined): Promise<EvaluationResult> {
    const t = this.parts.config.training;
    const limit = split === 'eval' ? t.evalLimit : t.testLimit;
    const dataset = evaluationSubset(this.parts.dataset.split(split), limit, t.evalOrder ?? 'sample', split);
    const evaluation = await evaluateSplit({ ...this.parts, batchSize: t.batchSize, maxNewTokens: t.maxNewTokens }, dataset, {
      final: split === 'test',
      onProgress: (done, total) => this.events$.next({ type: 'progress', phase: `eval ${split}`, done, total: total ?? done }),
      ...(signal ? { signal } : {}),
    });
    const { metrics, intervals } = evaluation;
    if (metrics['validationLoss'] !== undefined) this.parts.sampler.observe?.({ step, validationLoss: metrics['validationLoss'] });
    const bootstrapFile = runDir ? writeEvaluation(runDir, split, step, evaluation, { bootstrap: split === 'test' }) : undefined;
    this.events$.next({ type: 'eval', step, split, metrics, ...(evaluation.scores ? { intervals } : {}) });
    return { metrics, intervals, bootstrapFile };
  }

  /** Writes step-NNNNNN under runDir/checkpoints atomically (temporary folder, then rename). */
  private async checkpoint(step: number, runDir: string): Promise<string> {
    const dir = path.join(runDir, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
    if (fs.existsSync(dir)) return dir;
    // Streamed one tensor at a time: a large student's weights and Adam moments never sit in one buffer.
    const tensors: [string, tf.Tensor][] = this.parts.student.trainableVariables.map((v, i) => [`student/${String(i).padStart(4, '0')}`, v]);
    const optimizer = this.optimizer.state();
    for (const [name, tensor] of optimizer.tensors) tensors.push([name, tensor]);
    await writeFolderAtomic(dir, async (tmp) => {
      const state: CheckpointState = {
        step,
        optimizerStep: optimizer.step,
        consumedBatches: this.stream.consumed,
        rngs: Object.fromEntries([...this.parts.componentRngs].map(([k, rng]) => [k, rng.getState()])),
        sampler: this.parts.sampler.getState?.() ?? null,
        ...(this.parts.divergence.getState ? { divergence: this.parts.divergence.getState() } : {}),
        sha256: await writeSafetensorsStreaming(path.join(tmp, 'state.safetensors'), streamedTensors(tensors)),
      };
      writeFileAtomic(path.join(tmp, 'state.json'), JSON.stringify(state));
    });
    this.events$.next({ type: 'checkpoint', step, path: dir });
    return dir;
  }

  private warn(message: string): void {
    this.events$.next({ type: 'warning', message });
  }

  private async restore(dir: string): Promise<number> {
    const stateFile = path.join(dir, 'state.json');
    let state: CheckpointState;
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as CheckpointState;
    } catch (cause) {
      throw new FormatError(stateFile, (cause as { code?: string }).code === 'ENOENT' ? 'missing' : `not valid JSON: ${(cause as Error).message}`, { cause });
    }
    if (typeof state?.step !== 'number' || typeof state.consumedBatches !== 'number' || typeof state.rngs !== 'object' || state.rngs === null) {
      throw new FormatError(stateFile, 'not a training checkpoint state (step, consumedBatches, rngs)');
    }
    // One tensor at a time, into the variables; the moments are kept as tensors for the optimizer.
    const variables = this.parts.student.trainableVariables;
    const restored = new Set<number>();
    const moments = new Map<string, tf.Tensor>();
    try {
      forEachSafetensor(path.join(dir, 'state.safetensors'), state.sha256, (name, saved) => {
        if (name.startsWith('adam/')) {
          moments.set(name, tf.tensor(saved.data, [...saved.shape]));
          return;
        }
        const i = Number(name.slice('student/'.length));
        const v = variables[i];
        if (!name.startsWith('student/') || !v || saved.shape.join() !== v.shape.join()) {
          throw new SkdError(
            `checkpoint ${dir} does not match the student: ${v ? `variable ${i} should have shape [${v.shape.join(', ')}]` : `it holds ${name}, which the student does not have`}`,
            { hint: 'resume with the config the run was started with' },
          );
        }
        tf.tidy(() => v.assign(tf.tensor(saved.data, [...saved.shape])));
        restored.add(i);
      });
    } catch (error) {
      moments.forEach((m) => m.dispose());
      throw error;
    }
    const missing = variables.findIndex((_, i) => !restored.has(i));
    if (missing >= 0) {
      moments.forEach((m) => m.dispose());
      throw new SkdError(
        `checkpoint ${dir} does not match the student: variable ${missing} (shape [${(variables[missing] as tf.Variable).shape.join(', ')}]) is missing`,
        { hint: 'resume with the config the run was started with' },
      );
    }
    this.optimizer.load(state.optimizerStep, moments);
    moments.forEach((m) => m.dispose());
    for (const [key, rngState] of Object.entries(state.rngs)) this.parts.componentRngs.get(key)?.setState(rngState);
    if (state.sampler !== null) this.parts.sampler.setState?.(state.sampler as never);
    if (state.divergence !== undefined) this.parts.divergence.setState?.(state.divergence as never);
    await this.stream.skip(state.consumedBatches);
    return state.step;
  }
}

/** `grads` added into `sums` (both consumed), or `grads` when there is nothing yet. */
function addGrads(sums: tf.Tensor[] | undefined, grads: tf.Tensor[]): tf.Tensor[] {
  if (!sums) return grads;
  const next = sums.map((s, i) => tf.add(s, grads[i] as tf.Tensor));
  [...sums, ...grads].forEach((g) => g.dispose());
  return next;
}

/**
 * The bridge to the teacher's own tokenizer, when the run has one that differs from the student's;
 * and what a run across tokenizers cannot do, refused before anything runs.
 */
function crossTokenizerBridge(parts: TrainerRun): TokenizerBridge | undefined {
  const own = parts.teacherTokenizer;
  if (!own || !parts.teacher || !parts.divergence.needsTeacher || own.fingerprint === parts.tokenizer.fingerprint) return undefined;
  const issues = [
    ...(parts.divergence.aligned
      ? []
      : [{ path: 'divergence.kind', message: `"${parts.divergence.name}" compares the same token ids on both sides; across tokenizers use uld, gold or alm` }]),
    ...((parts.config.training.lossChunk ?? 0) > 0
      ? [{ path: 'training.lossChunk', message: 'the loss across tokenizers takes the whole logits of each response; set training.lossChunk: 0' }]
      : []),
  ];
  if (issues.length) throw new ConfigError('config', issues);
  return tokenizerBridge(parts.tokenizer, own);
}

/** A run's checkpoint folders, oldest first (unfinished `.partial-*` writes never count). */
export function checkpointFolders(runDir: string): string[] {
  const dir = path.join(runDir, 'checkpoints');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => /^step-\d{6}$/.test(name))
    .sort()
    .map((name) => path.join(dir, name));
}

/** The newest checkpoint folder holding a state file (resume verifies it, and falls back if it must). */
export function latestCheckpoint(runDir: string): string | undefined {
  return checkpointFolders(runDir)
    .filter((dir) => fs.existsSync(path.join(dir, 'state.json')))
    .at(-1);
}

function averageStats(all: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const stats of all) for (const [k, v] of Object.entries(stats)) sums[k] = (sums[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / all.length]));
}
