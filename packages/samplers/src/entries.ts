import { z } from 'zod';
import { defineComponent, optionsFactory, type AnyComponentEntry, type ComponentDeps } from '@skd/core';
import { DistillmSampler } from './distillm';
import type { SamplerModels } from './generating';
import { ImitKdSampler } from './imit-kd';
import { MixedSampler } from './mixed';
import { OnPolicySampler } from './on-policy';
import { SeqKdSampler } from './seq-kd';
import { generationOptions, samplingSchema } from './options';
import { SkdSampler } from './skd';
import { supervisedSamplerEntry } from './supervised';
import { SwitchSampler } from './switch';

const models = (deps: ComponentDeps['sampler']): SamplerModels => ({
  student: deps.student,
  teacher: deps.teacher,
  tokenizer: deps.tokenizer,
  ...(deps.teacherTokenizer ? { teacherTokenizer: deps.teacherTokenizer } : {}),
  rng: deps.rng,
});
const sampling = samplingSchema.default({ greedy: false, temperature: 1, topK: 0, topP: 1 });
const greedy = samplingSchema.default({ greedy: true, temperature: 1, topK: 0, topP: 1 });

export const onPolicyEntry = defineComponent({
  component: 'sampler',
  kind: OnPolicySampler.kind,
  summary: 'student-generated responses (on-policy KD)',
  options: z.strictObject({ ...generationOptions, sampling: sampling.describe("the student's sampling settings") }),
  create: (options, deps) => new OnPolicySampler(models(deps), options),
});

export const seqKdEntry = defineComponent({
  component: 'sampler',
  kind: SeqKdSampler.kind,
  summary: 'teacher-generated responses (SeqKD), optionally generated once and cached across epochs',
  options: z.strictObject({
    ...generationOptions,
    sampling: greedy.describe("the teacher's decoding (default greedy)"),
    cache: z.boolean().default(true).describe("generate each example's response once and reuse it"),
  }),
  create: (options, deps) => new SeqKdSampler(models(deps), options),
});

export const mixedEntry = defineComponent({
  component: 'sampler',
  kind: MixedSampler.kind,
  summary: 'GKD: per batch, student samples with probability lambda, else ground truth (or teacher outputs)',
  options: z.strictObject({
    ...generationOptions,
    lambda: z.number().min(0).max(1).default(0.5).describe('probability that a batch is on-policy'),
    offPolicy: z.enum(['reference', 'teacher']).default('reference').describe('what off-policy batches train on'),
    studentSampling: sampling,
    teacherSampling: greedy,
  }),
  create: (options, deps) => new MixedSampler(models(deps), options),
});

export const imitKdEntry = defineComponent({
  component: 'sampler',
  kind: ImitKdSampler.kind,
  summary: "ImitKD: per row, the student's sample with a probability that grows over training, else ground truth",
  options: z.strictObject({
    ...generationOptions,
    initialStudentShare: z.number().min(0).max(1).default(0).describe('student share at step 0'),
    finalStudentShare: z.number().min(0).max(1).default(1).describe('student share at the end of the ramp'),
    rampFraction: z.number().gt(0).max(1).default(1).describe('fraction of training over which the share grows'),
    sampling,
  }),
  create: (options, deps) => new ImitKdSampler(models(deps), options),
});

export const distillmEntry = defineComponent({
  component: 'sampler',
  kind: DistillmSampler.kind,
  summary: 'DistiLLM adaptive off-policy: student samples with probability threshold*(1-step/total), FIFO replay buffer',
  options: z.strictObject({
    ...generationOptions,
    initialThreshold: z.number().min(0).max(1).default(0.5).describe('starting threshold'),
    thresholdStep: z.number().min(0).max(1).default(0.1).describe('threshold increase when validation loss rises'),
    lossRise: z.number().min(0).default(0.1).describe('validation-loss rise that triggers an increase'),
    bufferSize: z.number().int().min(1).default(1000).describe('replay buffer capacity (FIFO)'),
    sampling,
  }),
  create: (options, deps) => new DistillmSampler(models(deps), options),
});

const skdOptions = (ratio: number) =>
  z
    .strictObject({
      ...generationOptions,
      topK: z.number().int().min(1).default(25).describe("drafts inside the teacher's top-K are accepted"),
      acceptance: z.enum(['top-k', 'top-p']).default('top-k').describe('top-K membership (paper) or nucleus membership'),
      topP: z.number().gt(0).max(1).default(0.9).describe('nucleus mass when acceptance is top-p'),
      acceptOn: z
        .enum(['raw', 'warped'])
        .default('raw')
        .describe('judge on the raw teacher distribution (paper) or the one warped by teacherSampling (reference code)'),
      replace: z.enum(['resample', 'argmax']).default('resample').describe("a rejected draft is replaced by a teacher sample or the teacher's argmax"),
      acceptTest: z
        .enum(['draft', 'resample'])
        .default('draft')
        .describe(
          "what is tested against the acceptance set at each drafted position: the draft (paper), or a fresh sample of the student's drafting distribution there, the draft kept if it passes (the authors' code, speculative_kd/transformers/generation/utils.py)",
        ),
      draftBlock: z.number().int().min(1).default(5).describe('tokens drafted per teacher forward (gamma)'),
      maxDraftBlock: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(
          'adaptive blocks: the block doubles up to this after a round where every draft was kept, and returns to draftBlock after a rejection (fewer teacher forwards at high acceptance; the same samples in distribution)',
        ),
      kDecay: z.boolean().default(false).describe('shrink K linearly to 1 (by ceil(K/L) every floor(L/K) units of a horizon L)'),
      kDecayUnit: z
        .enum(['steps', 'rounds'])
        .default('steps')
        .describe(
          "what K decays over: training steps (the paper's reading), or verification rounds within each generation, K starting over for every batch (the authors' code, speculative_kd/transformers/utils.py)",
        ),
      kDecayHorizon: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe("the horizon L in units; unset: the run's steps, or maxNewTokens rounds (the authors' expected_seq_len)"),
      ratio: z.number().min(0).max(1).default(ratio).describe('probability that a batch is an SKD sample (else ground truth)'),
      studentSampling: sampling.describe("the student's drafting settings"),
      teacherSampling: sampling.describe("the teacher's replacement sampling settings"),
      cacheTeacherLogProbs: z
        .boolean()
        .default(true)
        .describe('return the teacher distributions computed while verifying, so the trainer does not run the teacher again'),
      maxCachedTeacherFloats: z.number().int().min(0).default(64_000_000).describe('above this B*T*V the distributions are recomputed instead (memory guard)'),
    })
    .superRefine((o, ctx) => {
      if (o.acceptance === 'top-p' && o.topP === 1)
        ctx.addIssue({ code: 'custom', message: 'acceptance top-p with topP 1 accepts every token; use on-policy, or topP < 1', path: ['topP'] });
      if (o.kDecay && o.acceptance !== 'top-k')
        ctx.addIssue({ code: 'custom', message: 'kDecay shrinks K, which only top-k acceptance uses', path: ['kDecay'] });
      if (!o.kDecay && (o.kDecayUnit === 'rounds' || o.kDecayHorizon !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          message: `${o.kDecayUnit === 'rounds' ? 'kDecayUnit' : 'kDecayHorizon'} has no effect without kDecay: true`,
          path: [o.kDecayUnit === 'rounds' ? 'kDecayUnit' : 'kDecayHorizon'],
        });
      }
      if (o.maxDraftBlock !== undefined && o.maxDraftBlock < o.draftBlock)
        ctx.addIssue({ code: 'custom', message: `maxDraftBlock ${o.maxDraftBlock} is below draftBlock ${o.draftBlock}`, path: ['maxDraftBlock'] });
    });

export const skdEntry = defineComponent({
  component: 'sampler',
  kind: SkdSampler.kind,
  summary: 'speculative KD: student drafts, teacher keeps its top-K and replaces the rest (paper defaults)',
  options: skdOptions(1),
  create: (options, deps) => new SkdSampler(models(deps), options),
});

export const mixedSkdEntry = defineComponent({
  component: 'sampler',
  kind: 'mixed-skd',
  summary: 'SKD sample with probability ratio (default 0.5), otherwise the ground-truth response',
  options: skdOptions(0.5),
  create: (options, deps) => new SkdSampler(models(deps), options, 'mixed-skd'),
});

// Options with defaults for programs that build samplers without a config, e.g.
// `skdEntry.create(skdSamplerOptions({ replace: 'argmax' }), deps)`: the values a config's
// `"options"` would give, checked the same way.
export const seqKdSamplerOptions = optionsFactory(seqKdEntry, 'seqKdSamplerOptions');
export const onPolicySamplerOptions = optionsFactory(onPolicyEntry, 'onPolicySamplerOptions');
export const mixedSamplerOptions = optionsFactory(mixedEntry, 'mixedSamplerOptions');
export const imitKdSamplerOptions = optionsFactory(imitKdEntry, 'imitKdSamplerOptions');
export const distillmSamplerOptions = optionsFactory(distillmEntry, 'distillmSamplerOptions');
export const skdSamplerOptions = optionsFactory(skdEntry, 'skdSamplerOptions');
export const mixedSkdSamplerOptions = optionsFactory(mixedSkdEntry, 'mixedSkdSamplerOptions');

/** A sampler named inside another's options: a built-in kind and its options. */
const nestedSampler = z.strictObject({
  kind: z.string().min(1).describe('a built-in sampler kind'),
  options: z.record(z.string(), z.unknown()).default({}).describe("that kind's options"),
});

/** The built-in samplers a switch may compose (not another switch). */
const composable = (): readonly AnyComponentEntry<'sampler'>[] => samplerEntries.filter((e) => e.kind !== SwitchSampler.kind);

export const switchEntry = defineComponent({
  component: 'sampler',
  kind: SwitchSampler.kind,
  summary: "one sampler for the first part of training, another after (the SKD authors' mixed_train: supervised, then on-policy)",
  options: z
    .strictObject({
      at: z.number().min(0).max(1).default(0.5).describe('fraction of the training steps after which `then` samples (mixed_train: 0.5)'),
      first: nestedSampler.describe('the sampler before the switch, e.g. { "kind": "supervised" }'),
      then: nestedSampler.describe('the sampler after it, e.g. { "kind": "on-policy", "options": { "maxNewTokens": 128 } }'),
    })
    .superRefine((o, ctx) => {
      // Each nested sampler is checked as its own config would be, with its place named.
      for (const slot of ['first', 'then'] as const) {
        const entry = composable().find((e) => e.kind === o[slot].kind);
        if (!entry) {
          ctx.addIssue({
            code: 'custom',
            path: [slot, 'kind'],
            message: `unknown sampler kind "${o[slot].kind}"; one of ${composable()
              .map((e) => e.kind)
              .join(', ')}`,
          });
          continue;
        }
        const parsed = entry.options.safeParse(o[slot].options);
        if (!parsed.success)
          for (const issue of parsed.error.issues)
            ctx.addIssue({
              code: 'custom',
              path: [slot, 'options', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
              message: issue.message,
            });
      }
    }),
  create: async (options, deps) => {
    const build = async (ref: { kind: string; options: Record<string, unknown> }) => {
      const entry = composable().find((e) => e.kind === ref.kind) as AnyComponentEntry<'sampler'>;
      return entry.create(entry.options.parse(ref.options), deps);
    };
    return new SwitchSampler(await build(options.first), await build(options.then), options.at);
  },
});

export const samplerEntries: readonly AnyComponentEntry<'sampler'>[] = [
  supervisedSamplerEntry,
  seqKdEntry,
  onPolicyEntry,
  mixedEntry,
  imitKdEntry,
  distillmEntry,
  skdEntry,
  mixedSkdEntry,
  switchEntry,
];
