import { z } from 'zod';
import { BACKEND_NAMES } from '@skd/backend';

/**
 * A component in a config: `{ "kind": "skd", "options": { "topK": 25 } }`. With `"module"` the entry
 * is loaded from the user's own file (relative to the config file), then looked up by `kind`.
 */
export const componentRefSchema = z.strictObject({
  kind: z.string().min(1).describe('registry kind, e.g. "skd" or "forward-kl"'),
  module: z.string().min(1).optional().describe('path of a module exporting the component entry'),
  options: z.record(z.string(), z.unknown()).default({}).describe("options, checked by the kind's own schema"),
});

export type ComponentRef = z.infer<typeof componentRefSchema>;

/** How the student is trained; every field has a default that runs. */
export const trainingSchema = z.strictObject({
  steps: z.number().int().min(1).default(100).describe('optimizer steps'),
  batchSize: z.number().int().min(1).default(8).describe('examples per micro-batch'),
  gradientAccumulation: z
    .number()
    .int()
    .min(1)
    .default(1)
    .describe("micro-batches per optimizer step (the loss is normalised by the whole step's token count)"),
  learningRate: z.number().positive().default(1e-3).describe('peak learning rate'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay (matrices only; not biases, LayerNorm or embeddings of rank 1)'),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  epsilon: z.number().positive().default(1e-8),
  schedule: z.enum(['constant', 'linear', 'cosine']).default('linear').describe('learning-rate decay after warmup (to 0 at the last step)'),
  warmupSteps: z.number().int().min(0).default(0).describe('linear warmup from 0'),
  gradientClip: z.number().min(0).default(1).describe('clip the global gradient norm to this (0: off)'),
  lossReduction: z
    .enum(['tokens', 'sequences'])
    .default('tokens')
    .describe(
      "tokens: the summed token losses over the step's target tokens (long responses weigh more); sequences: each response's token mean, averaged over responses (the SKD authors' code)",
    ),
  evalEvery: z.number().int().min(0).default(0).describe('evaluate every N steps (0: only at the end)'),
  evalLimit: z.number().int().min(1).default(50).describe('eval-split examples evaluated during training'),
  testLimit: z.number().int().min(1).optional().describe('test-split examples evaluated at the end (default: the whole split)'),
  evalOrder: z
    .enum(['sample', 'file'])
    .default('sample')
    .describe('which examples evalLimit/testLimit keep: a seeded random sample, the same for every run (sample), or the first ones in the file (file)'),
  breakdownBy: z
    .string()
    .min(1)
    .optional()
    .describe(
      'also report every task metric per value of this example field (e.g. "task"), each with its own interval and paired tests; the dataset must keep the field (fields.extra)',
    ),
  maxNewTokens: z.number().int().min(1).default(64).describe('generation length at evaluation'),
  checkpointEvery: z.number().int().min(0).default(0).describe('write a checkpoint every N steps (0: only at the end)'),
  groupByLength: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('read this many batches at a time and regroup their examples by length (less padding, faster steps); 0: off'),
  lossChunk: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "take the loss over the vocabulary this many target positions at a time (the student's logits, their softmax and gradient exist for one slice only; prompts get no logits at all); 0: the whole batch at once",
    ),
  outputPoolBytes: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      'bytes of freed kernel outputs the native backend keeps for reuse (default: SKD_POOL_BYTES, else 1 GiB): less lowers the peak memory and costs the page faults of fresh buffers (0: no pool)',
    ),
  checkpointLayers: z
    .boolean()
    .default(false)
    .describe(
      "gradient checkpointing: keep only each block's input for the backward pass and run the block again there (less memory for activations, about a third more compute)",
    ),
  onTooLong: z
    .enum(['fail', 'skip'])
    .default('fail')
    .describe("training examples longer than the student's context: stop before training (with file and line), or skip and count them"),
  earlyStopping: z
    .strictObject({
      metric: z.string().min(1).describe('evaluation metric to watch, e.g. exactMatch or validationLoss'),
      patience: z.number().int().min(1).default(3).describe('evaluations without improvement before stopping'),
      mode: z.enum(['max', 'min']).default('max').describe('max for accuracy-like metrics, min for losses'),
    })
    .optional()
    .describe('stop when an evaluation metric stops improving (needs evalEvery > 0)'),
});

export type TrainingConfig = z.infer<typeof trainingSchema>;

export const runConfigSchema = z.strictObject({
  $comment: z.string().optional().describe('free text: what this config reproduces'),
  baseDir: z
    .string()
    .optional()
    .describe(
      "folder that relative paths in this config (data, checkpoints, modules) are resolved against; default: the config file's folder. Run folders save it, so their config.json runs as is",
    ),
  seed: z.number().int().min(0).default(42).describe('seed of every random choice in the run'),
  backend: z
    .enum(BACKEND_NAMES as [string, ...string[]])
    .default('auto')
    .describe('tfjs backend; auto picks the fastest available'),
  tokenizer: componentRefSchema.default({ kind: 'bytes', options: {} }).describe('shared by teacher and student'),
  teacherTokenizer: componentRefSchema
    .optional()
    .describe(
      "the teacher's own tokenizer, when it differs from the student's (cross-tokenizer distillation: divergence uld, gold or alm); unset: the teacher reads `tokenizer`",
    ),
  teacher: componentRefSchema.optional().describe('frozen teacher model; required by divergences other than cross-entropy'),
  student: componentRefSchema.describe('the model being trained'),
  sampler: componentRefSchema.default({ kind: 'supervised', options: {} }).describe('where training sequences come from'),
  divergence: componentRefSchema.default({ kind: 'cross-entropy', options: {} }).describe('token-level loss'),
  dataset: componentRefSchema.describe('task data with train/eval/test splits'),
  evaluators: z.array(componentRefSchema).default([]).describe('metrics computed at evaluation'),
  training: trainingSchema.default(trainingSchema.parse({})).describe('optimizer, schedule and evaluation settings'),
});

/** A validated config with every default filled in. */
export type RunConfig = z.infer<typeof runConfigSchema>;
