import { schemaKeyPaths, type ComponentKind, type KeyElsewhere } from '@skd/core';
import { createRegistries, type Registries } from './registry';
import { runConfigSchema } from './schema';

/** One place a key can sit in a run config: its full path, and for a component's options the kinds that take it. */
export interface ConfigKeyPath {
  /** Dotted, array elements as `*`: `training.onTooLong`, `sampler.options.topK`, `evaluators.*.options.answerMarker`. */
  readonly path: string;
  /** For `<slot>.options...` paths: the kinds whose options have it. */
  readonly kinds?: readonly string[];
}

/** The config's component slots and what each holds. */
const SLOTS: readonly (readonly [string, ComponentKind])[] = [
  ['tokenizer', 'tokenizer'],
  ['teacher', 'model'],
  ['student', 'model'],
  ['sampler', 'sampler'],
  ['divergence', 'divergence'],
  ['dataset', 'dataset'],
  ['evaluators.*', 'evaluator'],
];

/**
 * Every key a run config can hold: the run schema's own, and each component slot's options for
 * every registered kind. What hints name and what did-you-mean suggests are checked against it.
 */
export function configKeyPaths(registries: Registries = createRegistries()): ConfigKeyPath[] {
  const keys: ConfigKeyPath[] = schemaKeyPaths(runConfigSchema).map((path) => ({ path }));
  for (const [slot, component] of SLOTS) {
    const kindsAt = new Map<string, string[]>();
    for (const entry of registries[component].list()) {
      for (const path of schemaKeyPaths(entry.options, `${slot}.options`)) kindsAt.set(path, [...(kindsAt.get(path) ?? []), entry.kind]);
    }
    for (const [path, kinds] of kindsAt) keys.push({ path, kinds });
  }
  return keys;
}

/**
 * For an unknown key, the other places in a config where a key of that name exists, written as a
 * user would type them (`training.onTooLong`; a component option names its kinds when not every
 * kind of the slot takes it). Places in the run schema come first; at most three.
 */
export function keyElsewhere(registries: Registries = createRegistries()): KeyElsewhere {
  // Built on the first unknown key only: a valid config never pays for the index.
  let keys: ConfigKeyPath[] | undefined;
  const slotKinds = new Map(SLOTS.map(([slot, component]) => [slot, registries[component].kinds().length]));
  return (key, at) => {
    keys ??= configKeyPaths(registries);
    const here = at.replace(/\.\d+(?=\.|$)/g, '.*');
    return keys
      .filter((k) => k.path.split('.').pop() === key && k.path !== here)
      .sort((a, b) => (a.kinds ? 1 : 0) - (b.kinds ? 1 : 0))
      .slice(0, 3)
      .map((k) => {
        if (!k.kinds) return k.path;
        const slot = k.path.slice(0, k.path.indexOf('.options'));
        return k.kinds.length === slotKinds.get(slot) ? k.path : `${k.path} (${slot.replace('.*', '')} kind ${k.kinds.join(', ')})`;
      });
  };
}
