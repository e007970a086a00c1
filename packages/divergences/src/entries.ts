import { z } from 'zod';
import { defineComponent, optionsFactory, type AnyComponentEntry } from '@skd/core';
import { forwardKl, generalizedJsd, reverseKl, skewKl, skewReverseKl, totalVariation, type LogProbDivergence } from './divergences';
import { MINILLM_DEFAULTS, MiniLlmDivergence } from './minillm';
import { TAID_DEFAULTS, TaidDivergence } from './taid';
import { CrossEntropy, TokenDivergence } from './token-divergence';
import { AlmDivergence } from './alm';
import { UldDivergence } from './uld';

const shared = {
  temperature: z.number().positive().default(1).describe('divides teacher and student logits before the softmax'),
  scaleByTemperatureSquared: z.boolean().default(false).describe('multiply the loss by temperature^2'),
  sparseTopK: z.number().int().min(1).optional().describe("compare over the teacher's top-k tokens plus one tail bucket (unset: full vocabulary)"),
};

const uldOptions = {
  studentTemperature: z.number().positive().default(1).describe("divides the student's logits before its softmax"),
  teacherTemperature: z.number().positive().default(1).describe("divides the teacher's logits before its softmax"),
  merge: z
    .enum(['observed', 'bayesian'])
    .default('observed')
    .describe(
      "how a group of several tokens becomes one distribution: observed, the first position's times the later tokens' probabilities; bayesian, the last position's times the earlier ones'",
    ),
  eos: z
    .enum(['skip', 'keep'])
    .default('skip')
    .describe("across tokenizers: leave the responses' end tokens out of the alignment (TRL's uld_skip_*_eos), or keep them as a last group"),
  crossEntropyWeight: z
    .number()
    .min(0)
    .default(0)
    .describe("adds this times the student's cross-entropy on the sequence's own tokens (TRL's uld_crossentropy_weight; per response across tokenizers)"),
};

function teacherDivergence(kind: string, summary: string, fn: LogProbDivergence) {
  return defineComponent({
    component: 'divergence',
    kind,
    summary,
    options: z.strictObject(shared),
    create: (options) => new TokenDivergence({ name: kind, fn, ...options }),
  });
}

export const forwardKlEntry = teacherDivergence('forward-kl', 'KL(teacher || student), mass-covering (SKD default)', forwardKl);
export const reverseKlEntry = teacherDivergence('reverse-kl', 'KL(student || teacher), mode-seeking', reverseKl);
export const tvdEntry = teacherDivergence('tvd', 'total variation distance 0.5 sum |P - Q|', totalVariation);
/** Options of forward KL, reverse KL and TVD (temperature, its square scaling, sparse top-k) with defaults. */
export const divergenceOptions = optionsFactory(forwardKlEntry, 'divergenceOptions');

export const divergenceEntries: readonly AnyComponentEntry<'divergence'>[] = [
  forwardKlEntry,
  reverseKlEntry,
  tvdEntry,
  defineComponent({
    component: 'divergence',
    kind: 'jsd',
    summary: 'generalised JSD(beta) of GKD; beta 0 = forward KL, beta 1 = reverse KL',
    options: z.strictObject({ ...shared, beta: z.number().min(0).max(1).default(0.5).describe('mixture weight of the teacher') }),
    create: ({ beta, ...options }) => new TokenDivergence({ name: 'jsd', fn: generalizedJsd(beta), ...options }),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'skew-kl',
    summary: 'DistiLLM skew KL: KL(P || alpha P + (1 - alpha) Q)',
    options: z.strictObject({ ...shared, alpha: z.number().min(0).lt(1).default(0.1).describe('skew toward the teacher') }),
    create: ({ alpha, ...options }) => new TokenDivergence({ name: 'skew-kl', fn: skewKl(alpha), ...options }),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'skew-reverse-kl',
    summary: 'DistiLLM skew reverse KL: KL(Q || (1 - alpha) P + alpha Q)',
    options: z.strictObject({ ...shared, alpha: z.number().min(0).lt(1).default(0.1).describe('skew toward the student') }),
    create: ({ alpha, ...options }) => new TokenDivergence({ name: 'skew-reverse-kl', fn: skewReverseKl(alpha), ...options }),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'taid',
    summary:
      "TAID (Shing et al., ICLR 2025): KL from softmax((1 - t) student' + t teacher), the student's own logits detached, to the student; t rises from tStart by the paper's adaptive rule",
    options: z.strictObject({
      tStart: z.number().min(0).lt(1).default(TAID_DEFAULTS.tStart).describe('interpolation weight of the teacher at the first step'),
      tEnd: z.number().gt(0).max(1).default(TAID_DEFAULTS.tEnd).describe('its ceiling, and where the linear floor tStart -> tEnd ends at the last step'),
      alpha: z.number().min(0).max(1).default(TAID_DEFAULTS.alpha).describe('step size of the adaptive increase: t += alpha sigmoid(momentum) (1 - t)'),
      beta: z.number().min(0).lt(1).default(TAID_DEFAULTS.beta).describe("momentum of the loss's relative change from step to step"),
      adaptive: z.boolean().default(TAID_DEFAULTS.adaptive).describe('false: t follows the linear floor alone'),
      objective: z
        .enum(['kl', 'cross-entropy'])
        .default(TAID_DEFAULTS.objective)
        .describe(
          "the per-token value the loss (and the schedule) reads: kl, KL(p_t || q), or cross-entropy, -sum p_t log q as the authors' code reports it (same gradient)",
        ),
    }),
    create: (options) => new TaidDivergence(options),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'minillm',
    summary:
      "MiniLLM (Gu et al., ICLR 2024): sequence-level reverse KL by policy gradient on the student's samples (use sampler on-policy), reward log p_T - log p_S per token, plus the single-step reverse KL; TRL MiniLLMTrainer's loss",
    options: z.strictObject({
      temperature: z.number().positive().default(MINILLM_DEFAULTS.temperature).describe('divides teacher and student logits (kd_temperature)'),
      gamma: z
        .number()
        .min(0)
        .max(1)
        .default(MINILLM_DEFAULTS.gamma)
        .describe("discount of later tokens' rewards in a token's advantage; 0: its own reward alone"),
      lengthNormalization: z
        .boolean()
        .default(MINILLM_DEFAULTS.lengthNormalization)
        .describe('divide the discounted reward by the discounted number of tokens it sums'),
      rklAdvantage: z.boolean().default(MINILLM_DEFAULTS.rklAdvantage).describe('the policy-gradient term with the reverse-KL reward'),
      singleStep: z.boolean().default(MINILLM_DEFAULTS.singleStep).describe("the single-step term: each position's exact reverse KL"),
      rewardGradient: z
        .enum(['fixed', 'through'])
        .default(MINILLM_DEFAULTS.rewardGradient)
        .describe(
          "fixed: the reward is a constant to the gradient (a policy gradient); through: the student's log-prob in it keeps its gradient, as TRL's trainer",
        ),
    }),
    create: (options) => new MiniLlmDivergence(options),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'uld',
    summary:
      "Universal Logit Distillation (Boizard et al., 2024), as TRL GOLD's ULDLoss: each side's probabilities sorted, their L1 distance; across tokenizers (teacherTokenizer) over groups of tokens aligned by byte offsets",
    options: z.strictObject(uldOptions),
    create: (options) => new UldDivergence('uld', options),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'gold',
    summary:
      "GOLD's hybrid ULD (TRL's uld_use_hybrid_loss): the generalised JSD on tokens whose text both vocabularies hold, ULD's sorted L1 on the rest, weighted by the matched share of the teacher's vocabulary",
    options: z
      .strictObject({
        ...uldOptions,
        beta: z.number().min(0).max(1).default(0.5).describe("the JSD's beta on matched tokens: 0 forward KL, 1 reverse KL"),
        matchedWeight: z
          .number()
          .min(0)
          .optional()
          .describe('fixed weight of the matched part (set with unmatchedWeight); unset: the matched share of the vocabulary'),
        unmatchedWeight: z.number().min(0).optional().describe('fixed weight of the sorted-L1 part (set with matchedWeight)'),
        matchedGroups: z
          .enum(['all', 'one-to-one'])
          .default('all')
          .describe(
            "across tokenizers, the aligned groups that take the hybrid: all (TRL's), or one-to-one (one token on each side; the others ULD's sorted L1)",
          ),
      })
      .refine((o) => (o.matchedWeight === undefined) === (o.unmatchedWeight === undefined), {
        message: 'set matchedWeight and unmatchedWeight together, or neither',
        path: ['matchedWeight'],
      }),
    create: ({ beta, matchedWeight, unmatchedWeight, matchedGroups, ...options }) =>
      new UldDivergence('gold', {
        ...options,
        hybrid: {
          beta,
          groups: matchedGroups,
          ...(matchedWeight !== undefined && unmatchedWeight !== undefined ? { weights: { matched: matchedWeight, unmatched: unmatchedWeight } } : {}),
        },
      }),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'alm',
    summary:
      "chunk likelihood matching after ALM (Minixhofer et al., 2025): across tokenizers, each byte-aligned chunk's likelihood under each model (the chain rule over its own tokens) compared by the binarised forward KL, KL(Bern(p_T) || Bern(p_S)), at a temperature; with one tokenizer, each token a chunk",
    options: z.strictObject({
      eos: z
        .enum(['skip', 'keep'])
        .default('keep')
        .describe("across tokenizers: keep the responses' end tokens as a last chunk (the likelihood of ending there), or leave them out"),
      crossEntropyWeight: z
        .number()
        .min(0)
        .default(0)
        .describe("adds this times the student's cross-entropy on the sequence's own tokens (per response across tokenizers)"),
      temperature: z
        .number()
        .positive()
        .default(1)
        .describe(
          "both chunk log-likelihoods are divided by this before the binarised KL (each probability to the power 1/T): 1 compares the chunks' probabilities, larger values their log-likelihoods relative to each other (the authors' released code uses 100)",
        ),
    }),
    create: (options) => new AlmDivergence(options),
  }),
  defineComponent({
    component: 'divergence',
    kind: 'cross-entropy',
    summary: 'cross-entropy to the sequence tokens (supervised FT; no teacher)',
    options: z.strictObject({}),
    create: () => new CrossEntropy(),
  }),
];
