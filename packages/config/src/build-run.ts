import 'reflect-metadata';
import * as path from 'node:path';
import { container as rootContainer, inject, injectable, type DependencyContainer } from 'tsyringe';
import { selectBackend, setOutputPoolBytes, type BackendChoice } from '@skd/backend';
import {
  ConfigError,
  DATASET,
  DIVERGENCE,
  EVALUATORS,
  RUN_RNG,
  Rng,
  SAMPLER,
  STUDENT,
  TEACHER,
  TEACHER_TOKENIZER,
  TOKENIZER,
  VocabularyMismatchError,
  injectionToken,
  type AnyComponentEntry,
  type ComponentKind,
  type ConfigIssue,
  type DatasetSource,
  type Divergence,
  type Evaluator,
  type InjectionToken,
  type KdSampler,
  type LanguageModel,
  type Tokenizer,
} from '@skd/core';
import { toConfigIssues, objectKeysAt } from '@skd/core';
import { FieldBreakdown } from '@skd/evaluators';
import { keyElsewhere } from './keys';
import { loadComponentModule, loadConfigModules } from './modules';
import { createRegistries, type Registries } from './registry';
import { componentRefSchema, runConfigSchema, type ComponentRef, type RunConfig } from './schema';

export const RUN_CONFIG = injectionToken<RunConfig>('RunConfig');
export const RUN_BACKEND = injectionToken<BackendChoice>('RunBackend');

/** A component slot resolved to its entry with validated options: everything checked, nothing built. */
export interface PlannedComponent<K extends ComponentKind = ComponentKind> {
  readonly path: string;
  readonly entry: AnyComponentEntry<K>;
  readonly options: unknown;
}

export interface RunPlan {
  readonly config: RunConfig;
  readonly tokenizer: PlannedComponent<'tokenizer'>;
  readonly teacherTokenizer: PlannedComponent<'tokenizer'> | undefined;
  readonly teacher: PlannedComponent<'model'> | undefined;
  readonly student: PlannedComponent<'model'>;
  readonly sampler: PlannedComponent<'sampler'>;
  readonly divergence: PlannedComponent<'divergence'>;
  readonly dataset: PlannedComponent<'dataset'>;
  readonly evaluators: readonly PlannedComponent<'evaluator'>[];
}

export interface BuildRunOptions {
  /** Folder that relative paths in the config are resolved from (the config file's folder). */
  readonly baseDir?: string;
  /** Name of the config in error messages (its file path). */
  readonly source?: string;
  /** Registries to resolve kinds from; default: the built-ins. */
  readonly registries?: Registries;
  /**
   * Parent of the run's child container; default: tsyringe's root container. A component registered
   * there under its token (TOKENIZER, STUDENT, TEACHER, SAMPLER, DIVERGENCE, DATASET, EVALUATORS) is
   * used instead of the config's, which is still validated but not built; the program owns it (the
   * run does not dispose it, and checkpoints keep only the random streams of what the run built).
   */
  readonly parentContainer?: DependencyContainer;
}

/**
 * Validates a config completely (schema, kinds, modules, every component's options) and returns
 * the plan. Throws one ConfigError listing every problem. Creates no tensor.
 */
export function planRun(input: unknown, options: BuildRunOptions = {}): RunPlan {
  const source = options.source ?? 'config';
  const baseDir = options.baseDir ?? process.cwd();
  const registries = options.registries ?? createRegistries();
  const parsed = runConfigSchema.safeParse(input);
  const elsewhere = keyElsewhere(registries);
  const issues: ConfigIssue[] = parsed.success ? [] : toConfigIssues(parsed.error, input, '', (p) => objectKeysAt(runConfigSchema, p), elsewhere);
  const plan = <K extends ComponentKind>(component: K, ref: ComponentRef, where: string): PlannedComponent<K> | undefined => {
    try {
      const registry = registries[component] as unknown as { get(kind: string, p: string, s: string): AnyComponentEntry<K> };
      const entry = ref.module ? loadComponentModule(component, ref.kind, ref.module, baseDir, where, source) : registry.get(ref.kind, `${where}.kind`, source);
      const result = entry.options.safeParse(ref.options);
      if (!result.success) {
        issues.push(...toConfigIssues(result.error, ref.options, `${where}.options`, (p) => objectKeysAt(entry.options, p), elsewhere));
        return undefined;
      }
      return { path: where, entry, options: result.data };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
      return undefined;
    }
  };
  // Even when the top level is invalid, every component whose own reference parses is still checked,
  // so one run of validation reports every problem.
  const refs = parsed.success ? parsed.data : lenientRefs(input);
  const slot = <K extends ComponentKind>(component: K, where: Exclude<keyof ReturnType<typeof lenientRefs>, 'evaluators'>) => {
    const ref = refs[where];
    return ref ? plan(component, ref, where) : undefined;
  };
  const tokenizer = slot('tokenizer', 'tokenizer');
  const teacherTokenizer = slot('tokenizer', 'teacherTokenizer');
  const teacher = slot('model', 'teacher');
  const student = slot('model', 'student');
  const sampler = slot('sampler', 'sampler');
  const divergence = slot('divergence', 'divergence');
  const dataset = slot('dataset', 'dataset');
  const evaluators = (refs.evaluators ?? []).map((ref, i) => plan('evaluator', ref, `evaluators.${i}`));
  if (!parsed.success || issues.length > 0 || !tokenizer || !student || !sampler || !divergence || !dataset) {
    throw new ConfigError(source, issues);
  }
  const config = parsed.data;
  return {
    config,
    tokenizer,
    teacherTokenizer,
    teacher,
    student,
    sampler,
    divergence,
    dataset,
    evaluators: evaluators.filter((e): e is PlannedComponent<'evaluator'> => e !== undefined),
  };
}

/**
 * Validates a config completely after loading the modules it names (CommonJS and ES modules alike;
 * planRun alone cannot load an ES module, which loads asynchronously). Every command that checks or
 * plans a run goes through it, and so does buildRun.
 */
export async function validateRun(input: unknown, options: BuildRunOptions = {}): Promise<RunPlan> {
  await loadConfigModules(input, options.baseDir ?? process.cwd());
  return planRun(input, options);
}

/** The component references of a config that failed validation, each parsed on its own. */
function lenientRefs(input: unknown): Partial<
  Record<'tokenizer' | 'teacherTokenizer' | 'teacher' | 'student' | 'sampler' | 'divergence' | 'dataset', ComponentRef>
> & {
  evaluators?: ComponentRef[];
} {
  if (input === null || typeof input !== 'object') return {};
  const raw = input as Record<string, unknown>;
  const one = (value: unknown) => {
    const result = componentRefSchema.safeParse(value);
    return result.success ? result.data : undefined;
  };
  const evaluators = Array.isArray(raw['evaluators']) ? raw['evaluators'].map(one) : [];
  return {
    tokenizer: one(raw['tokenizer']),
    teacherTokenizer: one(raw['teacherTokenizer']),
    teacher: one(raw['teacher']),
    student: one(raw['student']),
    sampler: one(raw['sampler']),
    divergence: one(raw['divergence']),
    dataset: one(raw['dataset']),
    evaluators: evaluators.every((e) => e !== undefined) ? (evaluators as ComponentRef[]) : [],
  };
}

/** Everything a run is made of, resolved from the run's own container. */
@injectable()
export class Run {
  private readonly disposers: (() => void)[] = [];
  private disposed = false;
  /** Every component's random stream by config path: saved and restored by checkpoints. */
  readonly componentRngs = new Map<string, Rng>();
  /** What components said about how they were built (a padded vocabulary, ...), for the user to read before the run. */
  readonly notes: string[] = [];

  constructor(
    @inject(RUN_CONFIG) readonly config: RunConfig,
    @inject(RUN_BACKEND) readonly backend: BackendChoice,
    @inject(RUN_RNG) readonly rng: Rng,
    @inject(TOKENIZER) readonly tokenizer: Tokenizer,
    @inject(STUDENT) readonly student: LanguageModel,
    @inject(TEACHER, { isOptional: true }) readonly teacher: LanguageModel | undefined,
    @inject(TEACHER_TOKENIZER, { isOptional: true }) readonly teacherTokenizer: Tokenizer | undefined,
    @inject(SAMPLER) readonly sampler: KdSampler,
    @inject(DIVERGENCE) readonly divergence: Divergence,
    @inject(DATASET) readonly dataset: DatasetSource,
    @inject(EVALUATORS) readonly evaluators: readonly Evaluator[],
  ) {}

  /** Registers cleanup for something the run created; run in reverse order by `dispose`. */
  onDispose(dispose: () => void): void {
    this.disposers.push(dispose);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const dispose of this.disposers.reverse()) dispose();
  }
}

/**
 * `training.outputPoolBytes` on the backend that has an output pool (native); elsewhere a note that it
 * does not apply (nothing else pools outputs), so the setting is never silently dropped.
 */
function applyOutputPool(bytes: number | undefined, backendName: string): string | undefined {
  if (setOutputPoolBytes(bytes) || bytes === undefined) return undefined;
  return `training.outputPoolBytes applies to the native backend's output pool; the ${backendName} backend has none, so it changes nothing here`;
}

/**
 * The composition root: validates the config, selects the backend, then builds every component
 * into one child container per run and resolves the Run from it. `run.dispose()` frees what was made.
 */
export async function buildRun(input: unknown, options: BuildRunOptions = {}): Promise<Run> {
  const baseDir = options.baseDir ?? process.cwd();
  const plan = await validateRun(input, options);
  const { config } = plan;
  const backend = await selectBackend({ backend: config.backend as never, modelBytes: modelBytes(plan, baseDir) });
  const poolNote = applyOutputPool(config.training.outputPoolBytes, backend.name);
  const rng = Rng.create(config.seed);
  const container = (options.parentContainer ?? rootContainer).createChildContainer();
  const cleanups: (() => void)[] = [() => void container.dispose()];
  const value = <T>(token: InjectionToken<T>, instance: T) => container.register(token, { useValue: instance });
  const rngs = new Map<string, Rng>();
  const notes: string[] = poolNote ? [poolNote] : [];
  const make = async <K extends ComponentKind>(planned: PlannedComponent<K>, extra: object) => {
    const componentRng = rng.fork(planned.path);
    rngs.set(planned.path, componentRng);
    const deps = { baseDir, rng: componentRng, note: (message: string) => notes.push(`${planned.path}: ${message}`), ...extra } as never;
    const instance = await planned.entry.create(planned.options, deps);
    const disposable = instance as { dispose?: () => void };
    if (typeof disposable.dispose === 'function') cleanups.push(() => disposable.dispose?.());
    return instance;
  };
  // Each slot is resolved from its token: one the parent container already provides (a program's own
  // sampler, its evaluators) is used as it is, and is the program's to dispose; the others are built
  // from the config and registered here, so the components after them are built over what was chosen.
  const provided = <T>(token: InjectionToken<T>): boolean => container.isRegistered(token, true);
  const slot = async <T>(token: InjectionToken<T>, build: () => Promise<T>): Promise<T> => {
    if (!provided(token)) value(token, await build());
    return container.resolve(token);
  };
  try {
    value(RUN_CONFIG, config);
    value(RUN_BACKEND, backend);
    value(RUN_RNG, rng);
    const tokenizer = await slot(TOKENIZER, () => make(plan.tokenizer, {}));
    await slot(DIVERGENCE, () => make(plan.divergence, {}));
    const student = await slot(STUDENT, () => make(plan.student, { tokenizer, role: 'student' }));
    const teacherTokenizer = await teacherTokenizerOf(
      plan,
      tokenizer,
      provided(TEACHER_TOKENIZER) ? container.resolve(TEACHER_TOKENIZER) : undefined,
      make,
      notes,
    );
    if (teacherTokenizer) value(TEACHER_TOKENIZER, teacherTokenizer);
    const plannedTeacher = plan.teacher;
    const teacher =
      provided(TEACHER) || plannedTeacher
        ? await slot(TEACHER, () => make(plannedTeacher as PlannedComponent<'model'>, { tokenizer: teacherTokenizer ?? tokenizer, role: 'teacher' }))
        : undefined;
    checkVocabularies(tokenizer, student, teacher, teacherTokenizer, options.source ?? 'config');
    const divergence = container.resolve<Divergence>(DIVERGENCE);
    // Cross-entropy never runs the teacher: only a sampler might, and samplers carry text across.
    if (teacherTokenizer && divergence.needsTeacher) checkCrossTokenizer(divergence, plan, options.source ?? 'config');
    await slot(SAMPLER, () => make(plan.sampler, { student, teacher, tokenizer, ...(teacherTokenizer ? { teacherTokenizer } : {}) }));
    await slot(DATASET, () => make(plan.dataset, { tokenizer }));
    await slot(EVALUATORS, async () => {
      const evaluators: Evaluator[] = [];
      const breakdown = config.training.breakdownBy;
      for (const planned of plan.evaluators) {
        const evaluator = await make(planned, { tokenizer });
        evaluators.push(breakdown ? FieldBreakdown.of(evaluator, breakdown) : evaluator);
      }
      return evaluators;
    });
    const run = container.resolve(Run);
    for (const [path, componentRng] of rngs) run.componentRngs.set(path, componentRng);
    run.notes.push(...notes);
    for (const cleanup of cleanups) run.onDispose(cleanup);
    return run;
  } catch (error) {
    for (const cleanup of cleanups.reverse()) cleanup();
    throw error;
  }
}

function checkVocabularies(
  tokenizer: Tokenizer,
  student: LanguageModel,
  teacher: LanguageModel | undefined,
  teacherTokenizer: Tokenizer | undefined,
  source: string,
): void {
  if (student.vocabSize !== tokenizer.vocabSize) {
    throw new ConfigError(source, [
      { path: 'student', message: `student vocabulary ${student.vocabSize} does not match the tokenizer's ${tokenizer.vocabSize}` },
    ]);
  }
  if (teacher && teacherTokenizer && teacher.vocabSize !== teacherTokenizer.vocabSize) {
    throw new ConfigError(source, [
      { path: 'teacher', message: `teacher vocabulary ${teacher.vocabSize} does not match the teacher tokenizer's ${teacherTokenizer.vocabSize}` },
    ]);
  }
  if (teacher && !teacherTokenizer && teacher.vocabSize !== student.vocabSize) {
    throw new VocabularyMismatchError(`teacher vocab ${teacher.vocabSize} vs student vocab ${student.vocabSize}`, {
      hint: 'give the teacher its own tokenizer ("teacherTokenizer") and a divergence that compares across tokenizers (uld, gold or alm)',
    });
  }
}

/**
 * The teacher's own tokenizer (the config's `teacherTokenizer`, or one a program registered), or
 * undefined when there is none or it is the run's tokenizer (then a note says so: nothing is carried).
 */
async function teacherTokenizerOf(
  plan: RunPlan,
  tokenizer: Tokenizer,
  provided: Tokenizer | undefined,
  make: (planned: PlannedComponent<'tokenizer'>, extra: object) => Promise<Tokenizer>,
  notes: string[],
): Promise<Tokenizer | undefined> {
  const own = provided ?? (plan.teacherTokenizer ? await make(plan.teacherTokenizer, {}) : undefined);
  if (!own || own.fingerprint !== tokenizer.fingerprint) return own;
  notes.push("teacherTokenizer: it is the run's tokenizer, so the teacher reads the student's tokens as they are");
  return undefined;
}

/** Across tokenizers, the divergence must compare aligned groups, and the teacher must teach. */
function checkCrossTokenizer(divergence: Divergence, plan: RunPlan, source: string): void {
  const issues: ConfigIssue[] = [];
  if (!divergence.aligned) {
    issues.push({
      path: 'divergence.kind',
      message: `"${divergence.name}" compares the same token ids on both sides; a teacher with its own tokenizer needs a divergence over byte-aligned tokens: uld, gold or alm`,
    });
  }
  if (!plan.teacher) issues.push({ path: 'teacherTokenizer', message: 'there is no teacher to read it: add "teacher", or leave out "teacherTokenizer"' });
  if (issues.length) throw new ConfigError(source, issues);
}

/**
 * What the run's models need in memory, from their configs alone: a trained student holds weights,
 * gradients and two Adam moments (16 bytes a parameter), a frozen teacher its weights (4 bytes).
 */
function modelBytes(plan: RunPlan, baseDir: string): number {
  const count = (planned: PlannedComponent<'model'> | undefined) => planned?.entry.parameterCount?.(planned.options, { baseDir }) ?? 0;
  return 16 * count(plan.student) + 4 * count(plan.teacher);
}

/** Resolves a config file's folder, for `baseDir`. */
export function configBaseDir(configFile: string, config?: unknown): string {
  const folder = path.dirname(path.resolve(configFile));
  const declared = (config as { baseDir?: unknown } | null | undefined)?.baseDir;
  return typeof declared === 'string' ? path.resolve(folder, declared) : folder;
}
