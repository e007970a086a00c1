/**
 * What a run reports, as plain data (numbers and strings, never tensors), so RxJS stages, JSONL logs
 * and progress bars can consume it without touching tfjs.
 */
export interface RunStarted {
  readonly type: 'run-started';
  readonly runId: string;
  readonly totalSteps: number;
  /** First step this process runs: > 0 when resuming. */
  readonly startStep: number;
  readonly backend: string;
  readonly time: number;
}

export interface StepCompleted {
  readonly type: 'step';
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly learningRate: number;
  readonly gradNorm: number;
  /** Loss-target tokens trained on in this step. */
  readonly tokens: number;
  readonly tokensPerSecond: number;
  readonly seconds: number;
  /**
   * Where the step's seconds went: `sample` (the sampler: generation, SKD's verification), `teacher`
   * (the teacher's pass over the finished sequences for the loss; 0 when the sampler kept its
   * distributions), `student` (the student's forward, the loss and the backward pass) and `update`
   * (gradient clipping and the optimizer). Wall-clock seconds on the host; they sum to about `seconds`.
   */
  readonly phases?: Readonly<StepPhases>;
  /** The sampler's statistics for this step (acceptanceRate for SKD, ...). */
  readonly sampler: Readonly<Record<string, number>>;
  /** The divergence's numbers for this step, when it reports any (TAID: the interpolation `t` it used). */
  readonly divergence?: Readonly<Record<string, number>>;
}

export interface StepPhases {
  readonly sample: number;
  readonly teacher: number;
  readonly student: number;
  readonly update: number;
}

export interface EvaluationCompleted {
  readonly type: 'eval';
  readonly step: number;
  readonly split: string;
  readonly metrics: Readonly<Record<string, number>>;
  /** 95% bootstrap intervals over the evaluation examples, for metrics whose evaluator has per-example statistics. */
  readonly intervals?: Readonly<Record<string, readonly [number, number]>>;
}

export interface CheckpointWritten {
  readonly type: 'checkpoint';
  readonly step: number;
  readonly path: string;
}

/** Progress of long work that is not an optimizer step (generation, evaluation, data loading). */
export interface ProgressUpdate {
  readonly type: 'progress';
  readonly phase: string;
  readonly done: number;
  readonly total: number;
}

/** Something the user should know that does not stop the run (a checkpoint skipped on resume, leftovers removed). */
export interface RunWarning {
  readonly type: 'warning';
  readonly message: string;
}

export type RunEndReason = 'completed' | 'cancelled' | 'early-stopped' | 'diverged' | 'failed';

export interface RunEnded {
  readonly type: 'run-ended';
  readonly step: number;
  readonly reason: RunEndReason;
  readonly message?: string;
}

export type RunEvent = RunStarted | StepCompleted | EvaluationCompleted | CheckpointWritten | ProgressUpdate | RunWarning | RunEnded;

export type RunEventType = RunEvent['type'];
