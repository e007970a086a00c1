import { ConfigError, SkdError, type AnyComponentEntry, type ComponentKind } from '@skd/core';
import { datasetEntries } from '@skd/datasets';
import { divergenceEntries } from '@skd/divergences';
import { evaluatorEntries } from '@skd/evaluators';
import { modelEntries, tokenizerEntries } from '@skd/models';
import { samplerEntries } from '@skd/samplers';
// Methods scaffolded by `npx nx g ./tools:kd-method <name>` add one import and one entry below.
// @skd-generator:imports

/** Sampler entries from method packages (each registered here, so a config selects it by kind). */
const methodEntries: readonly AnyComponentEntry<'sampler'>[] = [
  // @skd-generator:entries
];

/** One flat registry per component kind: `kind` string → entry (options schema + factory). */
export class Registry<K extends ComponentKind> {
  private readonly entries = new Map<string, AnyComponentEntry<K>>();

  constructor(
    readonly component: K,
    entries: readonly AnyComponentEntry<K>[] = [],
  ) {
    for (const entry of entries) this.register(entry);
  }

  /** Adds an entry; a second entry under the same kind is a mistake, not an override. */
  register(entry: AnyComponentEntry<K>): this {
    if (entry.component !== this.component) {
      throw new SkdError(`cannot register a ${entry.component} entry ("${entry.kind}") in the ${this.component} registry`);
    }
    if (this.entries.has(entry.kind)) {
      throw new SkdError(`${this.component} kind "${entry.kind}" is already registered`, {
        hint: 'choose another kind name for your component',
      });
    }
    this.entries.set(entry.kind, entry);
    return this;
  }

  has(kind: string): boolean {
    return this.entries.has(kind);
  }

  /** The entry for `kind`, or a ConfigError at `path` that lists every known kind. */
  get(kind: string, path: string, source = 'config'): AnyComponentEntry<K> {
    const entry = this.entries.get(kind);
    if (!entry) {
      throw new ConfigError(source, [{ path, message: `Unknown ${this.component} kind "${kind}". Known kinds: ${this.kinds().join(', ')}` }]);
    }
    return entry;
  }

  kinds(): string[] {
    return [...this.entries.keys()].sort();
  }

  list(): AnyComponentEntry<K>[] {
    return this.kinds().map((kind) => this.entries.get(kind) as AnyComponentEntry<K>);
  }
}

export type Registries = { readonly [K in ComponentKind]: Registry<K> };

/** Fresh registries holding every built-in component (callers may register more). */
export function createRegistries(): Registries {
  return {
    tokenizer: new Registry('tokenizer', tokenizerEntries),
    model: new Registry('model', modelEntries),
    sampler: new Registry('sampler', [...samplerEntries, ...methodEntries]),
    divergence: new Registry('divergence', divergenceEntries),
    dataset: new Registry('dataset', datasetEntries),
    evaluator: new Registry('evaluator', evaluatorEntries),
  };
}
