import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyOverrides, buildRun, configBaseDir, planRun, readConfigFile, resolveOverridePaths, validateRun, type RunConfig } from '@skd/config';
import { SkdError, WriteError, type RunEvent, type SplitName } from '@skd/core';
import { DecoderModel, GptModel, peakResidentBytes, readJson, saveCheckpoint, writeAll, writeFileAtomic, type TrainingMemory } from '@skd/models';
import {
  LOCK_FILE,
  Trainer,
  checkTrainingData,
  earlyStopping,
  evaluateSplit,
  formatEvent,
  lockRunDir,
  meanSamplerStat,
  progressLines,
  readRunEvents,
  runHistory,
  evaluationSubset,
  toJsonLines,
  writeEvaluation,
  type SplitEvaluation,
  type TrainResult,
} from '@skd/trainer';
import type { Io } from './io';
import { checkRunFits, expectedRunMemory } from './memory';

export interface ExperimentOptions {
  readonly configFile: string;
  readonly sets: readonly string[];
  /** Run directory; default runs/<config file name>. */
  readonly out?: string;
  /**
   * Continue the run in `out` from its newest checkpoint (`--resume`), or start a new one (false).
   * `'if-started'` (sweeps and queue workers): continue it if the folder holds one, decided once the
   * folder is locked, so a run another process started or finished meanwhile is seen; a finished
   * one is refused with `RunFinishedError`.
   */
  readonly resume: boolean | 'if-started';
  /** `train` (supervised fine-tuning) or `distill` (KD with a teacher). */
  readonly mode: 'train' | 'distill';
  readonly io: Io;
  /** Runs of one group (e.g. the seeds of one method) are aggregated together in reports. */
  readonly group?: string;
  /** Cancels the run: the step finishes, a checkpoint is written. */
  readonly signal?: AbortSignal;
  /** Every event of the run as it happens (a queue worker publishes progress from them). */
  readonly onEvent?: (event: RunEvent) => void;
}

/** The run folder already holds a finished run (`resume: 'if-started'`): another process ended it. */
export class RunFinishedError extends SkdError {
  constructor(
    runDir: string,
    /** The steps the finished run trained. */
    readonly steps: number,
  ) {
    super(`run directory ${runDir} holds a finished run (${steps} steps)`, { hint: 'choose another --out to train it again' });
  }
}

export interface ExperimentResult extends TrainResult {
  readonly runDir: string;
}

/** A config file with --set overrides, validated completely (nothing built yet). */
export async function loadExperimentConfig(configFile: string, sets: readonly string[]): Promise<{ config: RunConfig; raw: unknown; baseDir: string }> {
  // Overrides resolve their relative paths from where they were written: the command line's from
  // the current directory (a sweep's were resolved from its file's folder when it was read).
  const raw = applyOverrides(
    readConfigFile(configFile),
    sets.map((s) => resolveOverridePaths(s, process.cwd())),
  );
  const baseDir = configBaseDir(configFile, raw);
  const plan = await validateRun(raw, { baseDir, source: configFile });
  return { config: plan.config, raw, baseDir };
}

function checkMode(config: RunConfig, mode: 'train' | 'distill', source: string): void {
  if (mode === 'train' && config.divergence.kind !== 'cross-entropy') {
    throw new SkdError(`${source}: skd train runs supervised fine-tuning, but divergence is "${config.divergence.kind}"`, {
      hint: 'use skd distill for knowledge distillation, or set divergence.kind=cross-entropy',
    });
  }
  if (mode === 'distill' && !config.teacher) {
    throw new SkdError(`${source}: skd distill needs a teacher model`, { hint: 'add "teacher" to the config (or use skd train for supervised fine-tuning)' });
  }
}

/**
 * Prepares the run directory: a new one gets the resolved config; an existing one is resumed
 * (only with --resume, and only with the same config, `$comment` aside) or refused. Nothing in it is overwritten.
 */
export function prepareRunDir(runDir: string, config: RunConfig, resume: boolean): void {
  const saved = path.join(runDir, 'config.json');
  if (fs.existsSync(saved)) {
    if (!resume) {
      throw new SkdError(`run directory ${runDir} already holds a run`, { hint: 'pass --resume to continue it, or choose another --out' });
    }
    const previous = normalisedSavedConfig(readJson(saved, 'the config of the run being resumed'), runDir);
    // `$comment` is free text about the run, and `baseDir` says where its paths were resolved: neither blocks a resume.
    const changed = changedPaths(previous, config).filter((p) => p !== '$comment' && p !== 'baseDir');
    if (changed.length) {
      throw new SkdError(`cannot resume ${runDir} with a different config (changed: ${changed.join(', ')})`, {
        hint: 'resume with the same config and --set values, or start a new run with another --out',
      });
    }
    return;
  }
  if (fs.existsSync(runDir) && fs.readdirSync(runDir).some((name) => name !== LOCK_FILE)) {
    throw new SkdError(`run directory ${runDir} exists and is not an skd run`, { hint: 'choose another --out' });
  }
  fs.mkdirSync(runDir, { recursive: true });
  writeFileAtomic(saved, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * The saved config of a run as this version of skd reads it: options added since the run started
 * take their defaults, so a run started by an older version still resumes (its saved file is
 * compared with the new config after both went through the same schemas). A saved config that no
 * longer validates is compared as it is, and the differences are named.
 */
function normalisedSavedConfig(saved: unknown, runDir: string): unknown {
  const baseDir = typeof (saved as { baseDir?: unknown })?.baseDir === 'string' ? (saved as { baseDir: string }).baseDir : runDir;
  try {
    return planRun(saved, { baseDir, source: path.join(runDir, 'config.json') }).config;
  } catch {
    return saved;
  }
}

/** Dotted paths of the leaves where two JSON values differ (`training.steps`, `sampler.options.topK`). */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(whole config)'];
}

/** `skd train` and `skd distill`: validate, prepare the run directory, train with progress, write the evidence. */
export async function runExperiment(options: ExperimentOptions): Promise<ExperimentResult> {
  const { io } = options;
  const { config, raw, baseDir } = await loadExperimentConfig(options.configFile, options.sets);
  checkMode(config, options.mode, options.configFile);
  const runDir = path.resolve(options.out ?? path.join('runs', path.basename(options.configFile).replace(/\.json$/, '')));
  // Build and check the data before the run directory is touched: a bad example costs nothing.
  const run = await buildRun(raw, { baseDir, source: options.configFile });
  let trainer: Trainer;
  let expected: TrainingMemory | undefined;
  let release = (): void => undefined;
  let resume = false;
  try {
    const data = await checkTrainingData(run.dataset, {
      tokenizer: run.tokenizer,
      contextLength: run.student.contextLength,
      onTooLong: config.training.onTooLong,
    });
    const { examples, tooLong } = data;
    expected = expectedRunMemory(config, run, data);
    if (expected) {
      try {
        checkRunFits(expected, run.backend.name);
      } catch (error) {
        // An estimate is not a measurement: say so, and let the run show what it really takes.
        if (error instanceof SkdError) io.err(`warning: ${error.message}; ${error.hint ?? ''}`);
        else throw error;
      }
    }
    release = lockRunDir(runDir, (message) => io.err(`warning: ${message}`));
    const summary = path.join(runDir, 'summary.json');
    if (options.resume === 'if-started' && fs.existsSync(summary))
      throw new RunFinishedError(runDir, (readJson(summary, 'the run summary') as { steps: number }).steps);
    resume = options.resume === 'if-started' ? fs.existsSync(path.join(runDir, 'config.json')) : options.resume;
    // Saved with the folder its relative paths mean, so `skd eval runs/x/config.json` runs as is.
    prepareRunDir(runDir, { ...config, baseDir }, resume);
    io.out(`training data: ${examples} examples${tooLong > 0 ? ` (${tooLong} longer than the context of ${run.student.contextLength} skipped)` : ''}`);
    trainer = new Trainer(run);
  } catch (error) {
    release();
    run.dispose();
    throw error;
  }
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  const metrics = fs.openSync(metricsFile, 'a');
  // A failed log write (disk full) stops the run like Ctrl-C, with a checkpoint, then fails naming the file.
  const failed = new AbortController();
  let logError: WriteError | undefined;
  const log = (line: string) => {
    if (logError) return;
    try {
      writeAll(metrics, Buffer.from(`${line}\n`));
    } catch (error) {
      logError = new WriteError(metricsFile, error);
      failed.abort();
    }
  };
  const stop = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const early = new AbortController();
  const watch = config.training.earlyStopping;
  const started = Date.now();
  const subscriptions = [
    trainer.events$.pipe(toJsonLines()).subscribe(log),
    trainer.events$.pipe(progressLines()).subscribe((line) => io.progress(line)),
    ...(watch
      ? [
          trainer.events$.pipe(earlyStopping(watch.metric, watch.patience, watch.mode)).subscribe((step) => {
            io.out(`early stopping at step ${step}: ${watch.metric} has not improved for ${watch.patience} evaluations`);
            early.abort();
          }),
        ]
      : []),
    trainer.events$.subscribe((event: RunEvent) => {
      if (event.type !== 'step' && event.type !== 'progress') io.out(formatEvent(event));
    }),
    ...(options.onEvent ? [trainer.events$.subscribe(options.onEvent)] : []),
  ];
  try {
    io.err(run.backend.short);
    for (const note of run.notes) io.err(`note: ${note}`);
    const result = await trainer.run({ runDir, resume, earlyStop: early.signal, signal: stop });
    if (logError) throw logError;
    if (result.reason !== 'cancelled') {
      if (run.student instanceof GptModel || run.student instanceof DecoderModel) {
        await saveCheckpoint(path.join(runDir, 'model'), { model: run.student, tokenizer: run.tokenizer, overwrite: true });
      }
      const summary = {
        run: path.basename(runDir),
        group: options.group ?? path.basename(runDir),
        config: path.resolve(options.configFile),
        mode: options.mode,
        sampler: config.sampler.kind,
        divergence: config.divergence.kind,
        seed: config.seed,
        steps: result.step,
        endReason: result.reason,
        seconds: (Date.now() - started) / 1000,
        backend: run.backend.summary,
        finalMetrics: result.finalMetrics,
        intervals: result.finalIntervals,
        ...(result.bootstrapFile ? { bootstrap: path.relative(runDir, result.bootstrapFile) } : {}),
        // Over the whole run: a resumed run's summary equals an uninterrupted one's (timings aside).
        meanAcceptanceRate: meanSamplerStat(runHistory(readRunEvents(metricsFile)), 'acceptanceRate'),
        // This process's peak resident memory (of this session, when resumed), beside what skd check expected.
        peakMemoryBytes: peakResidentBytes(),
        ...(expected ? { expectedPeakMemoryBytes: Math.round(expected.total) } : {}),
      };
      writeFileAtomic(path.join(runDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      io.out(`run complete: ${runDir}`);
    }
    return { ...result, runDir };
  } finally {
    subscriptions.forEach((s) => s.unsubscribe());
    fs.closeSync(metrics);
    trainer.dispose();
    run.dispose();
    release();
  }
}

export interface EvaluationCommandOptions {
  readonly configFile: string;
  readonly sets: readonly string[];
  readonly split: SplitName;
  /** At most this many examples; default: the test split whole, the eval split up to training.evalLimit. */
  readonly limit?: number;
  /** A folder to write the evaluation to, as a run folder `skd report` reads (predictions, bootstrap scores, summary.json). */
  readonly out?: string;
  readonly group?: string;
  readonly io: Io;
  /** Checked between batches: when aborted, the evaluation stops with an InterruptedError and writes nothing. */
  readonly signal?: AbortSignal;
}

/**
 * `skd eval`: the evaluation a run ends with (task metrics with 95% intervals, validation loss,
 * perplexity, teacher acceptance), for the config's student as built. With `out`, also a run folder
 * for `skd report`, so a starting student or a teacher sits in the same table as the trained runs.
 */
export async function runEvaluation(options: EvaluationCommandOptions): Promise<SplitEvaluation> {
  const { config, raw, baseDir } = await loadExperimentConfig(options.configFile, options.sets);
  const outDir = options.out !== undefined ? path.resolve(options.out) : undefined;
  if (outDir && fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) {
    throw new SkdError(`${outDir} exists and is not empty`, { hint: 'choose another --out (evaluations are never overwritten)' });
  }
  const run = await buildRun(raw, { baseDir, source: options.configFile });
  try {
    const t = config.training;
    const limit = options.limit ?? (options.split === 'eval' ? t.evalLimit : options.split === 'test' ? t.testLimit : undefined);
    const split = run.dataset.split(options.split);
    const started = Date.now();
    const evaluation = await evaluateSplit(
      {
        student: run.student,
        teacher: run.teacher,
        tokenizer: run.tokenizer,
        teacherTokenizer: run.teacherTokenizer,
        divergence: run.divergence,
        evaluators: run.evaluators,
        batchSize: t.batchSize,
        maxNewTokens: t.maxNewTokens,
      },
      evaluationSubset(split, limit, t.evalOrder, options.split),
      {
        final: true,
        onProgress: (done, total) => options.io.progress(`eval ${options.split} ${done}/${total ?? '?'}`),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    if (outDir) {
      fs.mkdirSync(outDir, { recursive: true });
      writeFileAtomic(path.join(outDir, 'config.json'), `${JSON.stringify({ ...config, baseDir }, null, 2)}\n`);
      const bootstrapFile = writeEvaluation(outDir, options.split, 0, evaluation, { bootstrap: true });
      const summary = {
        run: path.basename(outDir),
        group: options.group ?? path.basename(outDir),
        config: path.resolve(options.configFile),
        mode: 'eval',
        split: options.split,
        sampler: config.sampler.kind,
        divergence: config.divergence.kind,
        seed: config.seed,
        steps: 0,
        endReason: 'completed',
        seconds: (Date.now() - started) / 1000,
        backend: run.backend.summary,
        finalMetrics: evaluation.metrics,
        intervals: evaluation.intervals,
        ...(bootstrapFile ? { bootstrap: path.relative(outDir, bootstrapFile) } : {}),
        meanAcceptanceRate: null,
      };
      writeFileAtomic(path.join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    }
    return evaluation;
  } finally {
    run.dispose();
  }
}
