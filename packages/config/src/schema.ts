import { z } from 'zod';
import { BACKEND_NAMES } from '@skd/backend';

/**
 * A component in a config: `{ "kind": "skd", "options": { "topK": 25 } }`. With `"module"` the entry
 * is loaded from the user's own file (relative to the config file), then looked up by `kind`.
 */
export const componentRefSchema = z.strictObject({
  kind: z.string().min(1).describe('registry kind, e.g. "skd" or "forward-kl"'),
  module: z.string().min(1).optional().describe('path of a module exporting the component entry'),
  options: z.record(z.string(), z.unknown()).default({}).describe('options, checked by the kind\'s own schema'),
});

export type ComponentRef = z.infer<typeof componentRefSchema>;

export const runConfigSchema = z.strictObject({
  $comment: z.string().optional().describe('free text: what this config reproduces'),
  seed: z.number().int().min(0).default(42).describe('seed of every random choice in the run'),
  backend: z.enum(BACKEND_NAMES as [string, ...string[]]).default('auto').describe('tfjs backend; auto picks the fastest available'),
  tokenizer: componentRefSchema.default({ kind: 'bytes', options: {} }).describe('shared by teacher and student'),
  teacher: componentRefSchema.optional().describe('frozen teacher model; required by divergences other than cross-entropy'),
  student: componentRefSchema.describe('the model being trained'),
  sampler: componentRefSchema.default({ kind: 'supervised', options: {} }).describe('where training sequences come from'),
  divergence: componentRefSchema.default({ kind: 'cross-entropy', options: {} }).describe('token-level loss'),
  dataset: componentRefSchema.describe('task data with train/eval/test splits'),
  evaluators: z.array(componentRefSchema).default([]).describe('metrics computed at evaluation'),
});

/** A validated config with every default filled in. */
export type RunConfig = z.infer<typeof runConfigSchema>;

/** The component slots of a run config, and which registry each draws from. */
export const COMPONENT_SLOTS = {
  tokenizer: 'tokenizer',
  teacher: 'model',
  student: 'model',
  sampler: 'sampler',
  divergence: 'divergence',
  dataset: 'dataset',
} as const;
