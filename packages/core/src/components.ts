import type { ZodType } from 'zod';
import { objectKeysAt, toConfigIssues } from './config-issues';
import type { Dataset, DatasetSource } from './dataset';
import type { Divergence } from './divergence';
import { ConfigError } from './errors';
import type { Evaluator } from './evaluator';
import type { LanguageModel } from './language-model';
import type { Rng } from './rng';
import type { KdSampler } from './sampler';
import type { Tokenizer } from './tokenizer';

/**
 * Swappable component kinds. Each has one flat registry (in @skd/config) mapping a `kind` string
 * to an entry: a strict options schema and a factory. A config selects one with
 * `{ "kind": "skd", "options": { "topK": 25 } }`, or loads a user's entry with `"module"`.
 */
export interface ComponentTypes {
  tokenizer: Tokenizer;
  model: LanguageModel;
  sampler: KdSampler;
  divergence: Divergence;
  dataset: DatasetSource;
  evaluator: Evaluator;
}

export type ComponentKind = keyof ComponentTypes;

/** Where a run's relative paths (checkpoints, data files, modules) are resolved from. */
export interface BaseDeps {
  readonly baseDir: string;
  /** The component's own random stream, forked from the run seed by its config path. */
  readonly rng: Rng;
  /** Tells the user something about how the component was built (printed before the run starts). */
  readonly note?: (message: string) => void;
}

/** What each kind's factory is given by the composition root. Nothing else is injected. */
export interface ComponentDeps {
  tokenizer: BaseDeps;
  model: BaseDeps & { readonly tokenizer: Tokenizer; readonly role: 'teacher' | 'student' };
  sampler: BaseDeps & {
    readonly student: LanguageModel;
    readonly teacher: LanguageModel | undefined;
    readonly tokenizer: Tokenizer;
    /** The teacher's own tokenizer, when it differs from the student's (the run's `teacherTokenizer`). */
    readonly teacherTokenizer?: Tokenizer;
  };
  divergence: BaseDeps;
  /** The run's tokenizer: chat datasets render their conversations with its chat template. */
  dataset: BaseDeps & { readonly tokenizer?: Tokenizer };
  evaluator: BaseDeps & { readonly tokenizer: Tokenizer };
}

export interface ComponentEntry<K extends ComponentKind = ComponentKind, Options = unknown, Input = unknown> {
  /** Which registry the entry belongs to. */
  readonly component: K;
  /** The `kind` string a config uses. Stable: it is how saved configs find the component. */
  readonly kind: string;
  /** One line for `--help` and the docs. */
  readonly summary: string;
  /** Strict schema of the options object; defaults live here. */
  readonly options: ZodType<Options, Input>;
  create(options: Options, deps: ComponentDeps[K]): ComponentTypes[K] | Promise<ComponentTypes[K]>;
  /**
   * Models: how many parameters `create` would load, read cheaply (a config file) before anything
   * is built, so the run can pick a backend whose memory holds them. Undefined: unknown (small).
   */
  parameterCount?(options: Options, deps: { readonly baseDir: string }): number | undefined;
}

/** An entry of some registry, whatever its options type (registries hold entries of mixed options). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the options type differs per entry
export type AnyComponentEntry<K extends ComponentKind = ComponentKind> = ComponentEntry<K, any, any>;

/**
 * Declares a registry entry with its types checked. A user's module exports one (as `default` or
 * as `component`) to plug a new sampler, divergence, dataset, ... into a config.
 */
export function defineComponent<K extends ComponentKind, Options, Input>(entry: ComponentEntry<K, Options, Input>): ComponentEntry<K, Options, Input> {
  return entry;
}

/**
 * The options a component gets from a partial object, filled in exactly as a config file's
 * `options` would be: defaults applied, values checked, unknown keys refused with did-you-mean
 * hints (a `ConfigError` naming `name`). For programs that build components without a config:
 * `skdSamplerOptions({ topK: 5 })` is `optionsFactory(skdEntry, 'skdSamplerOptions')`.
 */
export function optionsFactory<Options, Input>(
  schemaOrEntry: ZodType<Options, Input> | { readonly options: ZodType<Options, Input> },
  name: string,
): (options?: Input) => Options {
  const schema = 'safeParse' in schemaOrEntry ? schemaOrEntry : schemaOrEntry.options;
  return (options = {} as Input) => {
    const result = schema.safeParse(options);
    if (!result.success)
      throw new ConfigError(
        `${name}()`,
        toConfigIssues(result.error, options, '', (p) => objectKeysAt(schema, p)),
      );
    return result.data;
  };
}

/** Dataset is re-exported for entry authors that stream examples. */
export type { Dataset };
