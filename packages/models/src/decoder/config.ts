import { z } from 'zod';
import { ConfigError, optionsFactory } from '@skd/core';
import { GATE_ACTIVATIONS } from '@skd/ops';

/** The Hugging Face families a decoder reads and writes (config.json `model_type`). */
export const DECODER_ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'olmo2', 'gemma', 'gemma2', 'gemma3'] as const;
export type DecoderArchitecture = (typeof DECODER_ARCHITECTURES)[number];

const ropeScalingSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('linear'), factor: z.number().positive() }),
  z.strictObject({
    type: z.literal('llama3'),
    factor: z.number().positive(),
    lowFreqFactor: z.number().positive(),
    highFreqFactor: z.number().positive(),
    originalContext: z.number().int().positive(),
  }),
  z.strictObject({
    type: z.literal('yarn'),
    factor: z.number().positive(),
    originalContext: z.number().int().positive(),
    betaFast: z.number().positive().default(32),
    betaSlow: z.number().positive().default(1),
    truncate: z.boolean().default(true),
    attentionFactor: z.number().positive().describe("cos and sin's factor (default 0.1 ln(factor) + 1, as transformers infers it)"),
  }),
  z.strictObject({
    type: z.literal('longrope'),
    shortFactor: z.array(z.number().positive()).min(1),
    longFactor: z.array(z.number().positive()).min(1),
    originalContext: z.number().int().positive(),
    attentionFactor: z.number().positive(),
  }),
  z.strictObject({ type: z.literal('dynamic'), factor: z.number().positive() }),
]);

/**
 * The architecture of a Llama-family decoder: pre-RMSNorm blocks, rotary positions, grouped-query
 * attention, a gated MLP (SwiGLU or GeGLU); Qwen2's q/k/v biases, Gemma's (1 + w) norms and scaled
 * embeddings, Gemma 2's sandwich norms, soft-capping and sliding-window layers, Qwen3's per-head
 * query/key norms, OLMo 2's norms after (not before) each sublayer and over the whole q and k
 * projections, and Mistral's sliding window on every layer are switches.
 * Defaults give a small Llama that trains on a CPU.
 */
export const decoderConfigSchema = z.strictObject({
  architecture: z.enum(DECODER_ARCHITECTURES).default('llama').describe('the Hugging Face family the weights are named and exported as'),
  vocabSize: z.number().int().min(2).describe('rows of the embedding (may exceed the tokenizer: Qwen pads it)'),
  contextLength: z.number().int().min(2).default(2048).describe('longest sequence, prompt plus generated tokens'),
  layers: z.number().int().min(1).default(2).describe('transformer blocks'),
  heads: z.number().int().min(1).default(4).describe('query heads per block'),
  kvHeads: z.number().int().min(1).optional().describe('key/value heads per block (grouped-query attention; default: heads)'),
  headDim: z.number().int().min(2).optional().describe('width of one head (default dModel / heads)'),
  dModel: z.number().int().min(2).default(128).describe('residual stream width'),
  dFf: z.number().int().min(1).optional().describe('gated MLP hidden width (default 4 * dModel)'),
  activation: z.enum(GATE_ACTIVATIONS).default('silu').describe("the gate's activation: silu (SwiGLU), gelu or gelu_tanh (GeGLU)"),
  normEpsilon: z.number().positive().default(1e-6).describe('RMSNorm epsilon'),
  normOffset: z
    .union([z.literal(0), z.literal(1)])
    .default(0)
    .describe('RMSNorm scales by (offset + weight): 1 in Gemma'),
  embedScale: z.boolean().default(false).describe('multiply embeddings by sqrt(dModel) (Gemma)'),
  ropeTheta: z.number().positive().default(10000).describe('rotary base'),
  ropeScaling: ropeScalingSchema.optional().describe('rotary frequency scaling for long contexts (linear, llama3, yarn, longrope or dynamic)'),
  slidingRopeTheta: z
    .number()
    .positive()
    .optional()
    .describe('rotary base of the sliding-window layers, unscaled (Gemma 3: rope_local_base_freq); default: ropeTheta and ropeScaling on every layer'),
  qkvBias: z.boolean().default(false).describe('biases on the q, k and v projections (Qwen2, Llama attention_bias)'),
  outputBias: z.boolean().default(false).describe('bias on the attention output projection (Llama attention_bias)'),
  mlpBias: z.boolean().default(false).describe('biases on the MLP projections (Llama mlp_bias)'),
  tiedHead: z.boolean().default(true).describe('output head shares the token embedding matrix'),
  sandwichNorms: z.boolean().default(false).describe('RMSNorm after attention and after the MLP too (Gemma 2)'),
  postNorms: z.boolean().default(false).describe("RMSNorm on attention's and the MLP's outputs instead of their inputs (OLMo 2)"),
  qkNorm: z
    .enum(['head', 'projection'])
    .optional()
    .describe('RMSNorm on queries and keys before the rotary positions: over each head (Qwen3) or over the whole projection (OLMo 2)'),
  attentionScale: z.number().positive().optional().describe('scale of the attention scores (default 1 / sqrt(headDim); Gemma 2: query_pre_attn_scalar^-0.5)'),
  attentionSoftcap: z.number().positive().optional().describe('soft-cap of the attention scores (Gemma 2: 50)'),
  finalSoftcap: z.number().positive().optional().describe('soft-cap of the output logits (Gemma 2: 30)'),
  slidingWindow: z.number().int().min(1).optional().describe('the window of sliding-window layers'),
  layerTypes: z
    .array(z.enum(['full', 'sliding']))
    .optional()
    .describe('per layer: full attention or the sliding window (default: all full)'),
});

export type DecoderConfig = z.infer<typeof decoderConfigSchema>;

const parseDecoderConfig = optionsFactory(decoderConfigSchema, 'decoderConfig');

/** A complete decoder config from the fields that differ from the defaults, checked like a config file. */
export function decoderConfig(options: z.input<typeof decoderConfigSchema>): DecoderConfig {
  const config = parseDecoderConfig(options);
  const problems = checkDecoderConfig(config);
  if (problems.length)
    throw new ConfigError(
      'decoderConfig()',
      problems.map((message) => ({ path: '', message })),
    );
  return config;
}

/** The sizes a config leaves to defaults, resolved. */
export function decoderShape(config: DecoderConfig) {
  const headDim = config.headDim ?? config.dModel / config.heads;
  return { headDim, kvHeads: config.kvHeads ?? config.heads, dFf: config.dFf ?? 4 * config.dModel };
}

/** Checks the cross-field constraints the schema cannot express; messages quote the values. */
export function checkDecoderConfig(config: DecoderConfig): string[] {
  const problems: string[] = [];
  const { headDim, kvHeads } = decoderShape(config);
  if (!Number.isInteger(headDim))
    problems.push(`dModel must be divisible by heads when headDim is not given, got dModel ${config.dModel} and heads ${config.heads}`);
  else if (headDim % 2 !== 0) problems.push(`rotary positions need an even head dimension, got ${headDim}`);
  if (config.heads % kvHeads !== 0) problems.push(`heads must be a multiple of kvHeads, got heads ${config.heads} and kvHeads ${kvHeads}`);
  if (config.layerTypes && config.layerTypes.length !== config.layers)
    problems.push(`layerTypes needs one entry per layer (${config.layers}), got ${config.layerTypes.length}`);
  if (config.layerTypes?.includes('sliding') && config.slidingWindow === undefined) problems.push('sliding layers need slidingWindow');
  const scaling = config.ropeScaling;
  if ((scaling?.type === 'yarn' || scaling?.type === 'longrope') && config.slidingRopeTheta !== undefined)
    problems.push(
      `${scaling.type} scales every layer's attention, so it cannot be combined with slidingRopeTheta (sliding layers with their own, unscaled rope)`,
    );
  if (scaling?.type === 'longrope' && Number.isInteger(headDim) && (scaling.shortFactor.length !== headDim / 2 || scaling.longFactor.length !== headDim / 2))
    problems.push(
      `longrope needs ${headDim / 2} short and long factors (half the head dimension), got ${scaling.shortFactor.length} and ${scaling.longFactor.length}`,
    );
  if (config.postNorms && config.sandwichNorms) problems.push('postNorms and sandwichNorms exclude each other (sandwich norms are before and after)');
  return problems;
}

/** Per layer, the attention window (0: every earlier token). */
export function layerWindows(config: DecoderConfig): number[] {
  return Array.from({ length: config.layers }, (_, i) => (config.layerTypes?.[i] === 'sliding' ? (config.slidingWindow as number) : 0));
}

/**
 * The parameters of a config and their shapes. Names follow Hugging Face's Llama naming, with q|k|v
 * and gate|up packed into one matrix each (`qkv_proj`, `gate_up_proj`, as Phi-3 names them); matrices
 * are stored (in, out), the layout skd's linear kernels take. The embedding and the head are (V, d).
 */
export function decoderParameterShapes(config: DecoderConfig): Map<string, number[]> {
  const d = config.dModel;
  const { headDim, kvHeads, dFf } = decoderShape(config);
  const qkv = (config.heads + 2 * kvHeads) * headDim;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [config.vocabSize, d]);
  for (let i = 0; i < config.layers; i++) {
    const p = `model.layers.${i}`;
    if (!config.postNorms) shapes.set(`${p}.input_layernorm.weight`, [d]);
    shapes.set(`${p}.self_attn.qkv_proj.weight`, [d, qkv]);
    if (config.qkvBias) shapes.set(`${p}.self_attn.qkv_proj.bias`, [qkv]);
    if (config.qkNorm) {
      const whole = config.qkNorm === 'projection';
      shapes.set(`${p}.self_attn.q_norm.weight`, [whole ? config.heads * headDim : headDim]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [whole ? kvHeads * headDim : headDim]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [config.heads * headDim, d]);
    if (config.outputBias) shapes.set(`${p}.self_attn.o_proj.bias`, [d]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [d]);
    if (config.sandwichNorms) shapes.set(`${p}.pre_feedforward_layernorm.weight`, [d]);
    if (config.sandwichNorms || config.postNorms) shapes.set(`${p}.post_feedforward_layernorm.weight`, [d]);
    shapes.set(`${p}.mlp.gate_up_proj.weight`, [d, 2 * dFf]);
    if (config.mlpBias) shapes.set(`${p}.mlp.gate_up_proj.bias`, [2 * dFf]);
    shapes.set(`${p}.mlp.down_proj.weight`, [dFf, d]);
    if (config.mlpBias) shapes.set(`${p}.mlp.down_proj.bias`, [d]);
  }
  shapes.set('model.norm.weight', [d]);
  if (!config.tiedHead) shapes.set('lm_head.weight', [config.vocabSize, d]);
  return shapes;
}
