import { FormatError } from '@skd/core';
import type { GateActivation } from '@skd/ops';
import { decoderConfigSchema, type DecoderArchitecture, type DecoderConfig } from '../decoder';
import { gptConfigSchema, type GptConfig } from '../gpt';

/** The architectures skd reads from a Hugging Face `config.json`, and their `model_type`. */
export const HF_ARCHITECTURES: Readonly<Record<string, string>> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  MistralForCausalLM: 'mistral',
  Phi3ForCausalLM: 'phi3',
  Olmo2ForCausalLM: 'olmo2',
  GemmaForCausalLM: 'gemma',
  Gemma2ForCausalLM: 'gemma2',
  Gemma3ForCausalLM: 'gemma3',
  GPT2LMHeadModel: 'gpt2',
};

const ARCHITECTURE_OF: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(HF_ARCHITECTURES).map(([a, t]) => [t, a]));

/** config.json `model_type` where it is not skd's architecture name (Gemma 3's text model). */
const MODEL_TYPES: Readonly<Record<string, string>> = { gemma3: 'gemma3_text' };
const TYPE_OF_MODEL_TYPE: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(MODEL_TYPES).map(([a, t]) => [t, a]));

type HfConfig = Record<string, unknown>;

/** The `model_type` a config describes (from `architectures`, else `model_type`), or a FormatError naming the supported list. */
export function hfModelType(hf: HfConfig, source: string): string {
  const architectures = Array.isArray(hf['architectures']) ? (hf['architectures'] as unknown[]) : [];
  const named = architectures.find((a): a is string => typeof a === 'string');
  const supported = Object.keys(HF_ARCHITECTURES).join(', ');
  if (named !== undefined) {
    const type = HF_ARCHITECTURES[named];
    if (!type) throw new FormatError(source, `architectures: ${JSON.stringify(named)} is not supported; skd reads ${supported}`);
    return type;
  }
  const given = hf['model_type'];
  const type = typeof given === 'string' ? (TYPE_OF_MODEL_TYPE[given] ?? given) : given;
  if (typeof type === 'string' && ARCHITECTURE_OF[type]) return type;
  throw new FormatError(source, `model_type ${JSON.stringify(type)} (and no architectures) is not supported; skd reads ${supported}`);
}

/** The Hugging Face class name of a model type. */
export function hfArchitectureName(type: string): string {
  return ARCHITECTURE_OF[type] ?? type;
}

const ACTIVATIONS: Readonly<Record<string, GateActivation>> = {
  silu: 'silu',
  swish: 'silu',
  gelu: 'gelu',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_new: 'gelu_tanh',
};

/** Per-family defaults where config.json may stay silent (transformers' config classes). */
const DEFAULTS: Record<DecoderArchitecture, { context: number; tied: boolean; theta: number; headDim?: number }> = {
  llama: { context: 2048, tied: false, theta: 10000 },
  qwen2: { context: 32768, tied: false, theta: 10000 },
  qwen3: { context: 32768, tied: false, theta: 10000, headDim: 128 },
  mistral: { context: 131072, tied: false, theta: 10000 },
  phi3: { context: 4096, tied: false, theta: 10000 },
  olmo2: { context: 2048, tied: false, theta: 10000 },
  gemma: { context: 8192, tied: true, theta: 10000, headDim: 256 },
  gemma2: { context: 8192, tied: true, theta: 10000, headDim: 256 },
  gemma3: { context: 131072, tied: true, theta: 1000000, headDim: 256 },
};

/**
 * skd's decoder config for a Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma or Gemma 2 `config.json`, read the way
 * transformers reads it (both the `rope_parameters` of transformers 5 and the older `rope_theta`
 * and `rope_scaling`). Whatever skd cannot run exactly (an unknown rope scaling, a partial rotary
 * factor, an unknown activation) is a FormatError naming the field.
 */
export function decoderConfigFromHuggingFace(hf: HfConfig, architecture: DecoderArchitecture, source: string): DecoderConfig {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(source, `${field}: ${detail}`);
  };
  const num = (field: string): number | undefined => {
    const v = hf[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(field, `expected a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const required = (field: string): number => num(field) ?? fail(field, 'missing');
  const defaults = DEFAULTS[architecture];
  const d = required('hidden_size');
  const heads = required('num_attention_heads');
  const activationField = architecture === 'gemma2' || architecture === 'gemma3' ? 'hidden_activation' : 'hidden_act';
  const activationName = (hf[activationField] ?? (architecture.startsWith('gemma') ? 'gelu_pytorch_tanh' : 'silu')) as string;
  const activation =
    ACTIVATIONS[activationName] ??
    fail(activationField, `${JSON.stringify(activationName)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  if (hf['use_bidirectional_attention'] === true) fail('use_bidirectional_attention', 'true is not supported (skd decodes causally)');
  // Gemma 3 keeps one rope setting per layer type; the full-attention layers' is the model's, the sliding ones' their own.
  const nested = architecture === 'gemma3' ? gemma3Rope(hf, fail) : undefined;
  const partial = rope(hf, 'partial_rotary_factor');
  if (partial !== undefined && partial !== 1) fail('partial_rotary_factor', `${partial} is not supported (skd rotates whole heads)`);
  const layers = required('num_hidden_layers');
  const sliding = slidingLayers(hf, architecture, layers, fail);
  const attentionBias = hf['attention_bias'] === true;
  const candidate = {
    architecture,
    vocabSize: required('vocab_size'),
    contextLength: num('max_position_embeddings') ?? defaults.context,
    layers,
    heads,
    kvHeads: num('num_key_value_heads') ?? heads,
    headDim: num('head_dim') ?? defaults.headDim ?? d / heads,
    dModel: d,
    dFf: required('intermediate_size'),
    activation,
    normEpsilon: num('rms_norm_eps') ?? 1e-6,
    normOffset: architecture.startsWith('gemma') ? 1 : 0,
    embedScale: architecture.startsWith('gemma'),
    ropeTheta: (nested ? nested.theta : rope(hf, 'rope_theta')) ?? defaults.theta,
    ...(nested ? nested.scaling : ropeScaling(hf, fail)),
    ...(nested ? { slidingRopeTheta: nested.slidingTheta } : {}),
    // Mistral's and Phi-3's projections have no biases whatever the config says; Qwen3's follow attention_bias, o_proj's too.
    qkvBias: architecture === 'qwen2' || (attentionBias && architecture !== 'mistral' && architecture !== 'phi3'),
    outputBias: attentionBias && architecture !== 'mistral' && architecture !== 'phi3' && architecture !== 'qwen2',
    mlpBias: architecture === 'llama' && hf['mlp_bias'] === true,
    ...(architecture === 'qwen3' || architecture === 'gemma3'
      ? { qkNorm: 'head' as const }
      : architecture === 'olmo2'
        ? { qkNorm: 'projection' as const, postNorms: true }
        : {}),
    tiedHead: typeof hf['tie_word_embeddings'] === 'boolean' ? (hf['tie_word_embeddings'] as boolean) : defaults.tied,
    sandwichNorms: architecture === 'gemma2' || architecture === 'gemma3',
    ...(architecture === 'gemma2' ? gemma2Attention(hf, num) : {}),
    ...(architecture === 'gemma3' ? gemma3Attention(hf, num) : {}),
    ...sliding,
  };
  const parsed = decoderConfigSchema.safeParse(candidate);
  if (!parsed.success)
    fail(
      parsed.error.issues[0]?.path.join('.') ?? '(root)',
      `does not describe a ${architecture} skd can build: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return (parsed as { data: DecoderConfig }).data;
}

/** A rope setting from `rope_parameters` (transformers 5) or the top level (older configs). */
function rope(hf: HfConfig, key: string): number | undefined {
  const parameters = hf['rope_parameters'] as Record<string, unknown> | null | undefined;
  const value = parameters && typeof parameters === 'object' && key in parameters ? parameters[key] : hf[key];
  return typeof value === 'number' ? value : undefined;
}

function ropeScaling(hf: HfConfig, fail: (field: string, detail: string) => never): Pick<DecoderConfig, 'ropeScaling'> {
  const field = hf['rope_parameters'] !== undefined ? 'rope_parameters' : 'rope_scaling';
  return scalingOf(hf[field] as Record<string, unknown> | null | undefined, field, fail, hf);
}

/** The rope scaling one rope-parameters object describes (`field` names it in errors). */
function scalingOf(
  parameters: Record<string, unknown> | null | undefined,
  field: string,
  fail: (field: string, detail: string) => never,
  hf: HfConfig = {},
): Pick<DecoderConfig, 'ropeScaling'> {
  if (parameters === null || parameters === undefined) return {};
  if (typeof parameters !== 'object') fail(field, `expected an object, got ${JSON.stringify(parameters)}`);
  const type = (parameters['rope_type'] ?? parameters['type'] ?? 'default') as string;
  const number = (key: string): number => {
    const v = parameters[key];
    return typeof v === 'number' ? v : fail(`${field}.${key}`, `missing for rope type ${JSON.stringify(type)}`);
  };
  switch (type) {
    case 'default':
      return {};
    case 'linear':
      return { ropeScaling: { type: 'linear', factor: number('factor') } };
    case 'llama3':
      return {
        ropeScaling: {
          type: 'llama3',
          factor: number('factor'),
          lowFreqFactor: number('low_freq_factor'),
          highFreqFactor: number('high_freq_factor'),
          originalContext: number('original_max_position_embeddings'),
        },
      };
    case 'yarn': {
      const factor = number('factor');
      const optional = (key: string): number | undefined => (typeof parameters[key] === 'number' ? (parameters[key] as number) : undefined);
      const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const m = optional('mscale');
      const mAll = optional('mscale_all_dim');
      return {
        ropeScaling: {
          type: 'yarn',
          factor,
          originalContext: number('original_max_position_embeddings'),
          betaFast: optional('beta_fast') || 32,
          betaSlow: optional('beta_slow') || 1,
          truncate: parameters['truncate'] !== false,
          attentionFactor: optional('attention_factor') ?? (m && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor)),
        },
      };
    }
    case 'longrope': {
      // Phi-3 keeps original_max_position_embeddings at the top level; factor defaults to the context's growth.
      const original =
        typeof parameters['original_max_position_embeddings'] === 'number'
          ? (parameters['original_max_position_embeddings'] as number)
          : typeof hf['original_max_position_embeddings'] === 'number'
            ? (hf['original_max_position_embeddings'] as number)
            : fail(`${field}.original_max_position_embeddings`, 'missing for rope type "longrope"');
      const factors = (key: string): number[] => {
        const v = parameters[key];
        return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : fail(`${field}.${key}`, 'missing or not a list of numbers');
      };
      const context = typeof hf['max_position_embeddings'] === 'number' ? (hf['max_position_embeddings'] as number) : original;
      const factor = typeof parameters['factor'] === 'number' ? (parameters['factor'] as number) : context / original;
      const given = parameters['attention_factor'];
      return {
        ropeScaling: {
          type: 'longrope',
          shortFactor: factors('short_factor'),
          longFactor: factors('long_factor'),
          originalContext: original,
          attentionFactor: typeof given === 'number' ? given : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)),
        },
      };
    }
    case 'dynamic':
      return { ropeScaling: { type: 'dynamic', factor: number('factor') } };
    default:
      return fail(`${field}.rope_type`, `${JSON.stringify(type)} is not supported (supported: default, linear, llama3, yarn, longrope, dynamic)`);
  }
}

/**
 * Gemma 3's two rope settings: transformers 5's `rope_parameters` per layer type, or the older
 * `rope_theta` / `rope_scaling` (full-attention layers) and `rope_local_base_freq` (sliding ones).
 * The sliding layers' must be unscaled, as every released Gemma 3 has them.
 */
function gemma3Rope(hf: HfConfig, fail: (field: string, detail: string) => never) {
  const parameters = hf['rope_parameters'] as Record<string, Record<string, unknown> | undefined> | null | undefined;
  const perType = parameters && typeof parameters === 'object' && ('full_attention' in parameters || 'sliding_attention' in parameters);
  const full = perType ? (parameters['full_attention'] ?? {}) : ((hf['rope_scaling'] ?? {}) as Record<string, unknown>);
  const sliding = perType ? (parameters['sliding_attention'] ?? {}) : {};
  const fullField = perType ? 'rope_parameters.full_attention' : 'rope_scaling';
  const slidingType = (sliding['rope_type'] ?? 'default') as string;
  if (slidingType !== 'default')
    fail('rope_parameters.sliding_attention.rope_type', `${JSON.stringify(slidingType)} is not supported (the sliding layers' rope must be default)`);
  const number = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    theta: number(full['rope_theta']) ?? number(hf['rope_theta']) ?? 1000000,
    slidingTheta: number(sliding['rope_theta']) ?? number(hf['rope_local_base_freq']) ?? 10000,
    scaling: scalingOf(full, fullField, fail),
  };
}

/** Gemma 3's attention: Gemma 2's scale, soft-caps only where the config sets them. */
function gemma3Attention(hf: HfConfig, num: (field: string) => number | undefined): Partial<DecoderConfig> {
  const attentionCap = num('attn_logit_softcapping');
  const finalCap = num('final_logit_softcapping');
  return {
    attentionScale: Math.pow(num('query_pre_attn_scalar') ?? 256, -0.5),
    ...(attentionCap ? { attentionSoftcap: attentionCap } : {}),
    ...(finalCap ? { finalSoftcap: finalCap } : {}),
  };
}

function gemma2Attention(hf: HfConfig, num: (field: string) => number | undefined): Partial<DecoderConfig> {
  const scalar = num('query_pre_attn_scalar') ?? 256;
  const attentionCap = hf['attn_logit_softcapping'] === null ? undefined : (num('attn_logit_softcapping') ?? 50);
  const finalCap = hf['final_logit_softcapping'] === null ? undefined : (num('final_logit_softcapping') ?? 30);
  return {
    attentionScale: Math.pow(scalar, -0.5),
    ...(attentionCap ? { attentionSoftcap: attentionCap } : {}),
    ...(finalCap ? { finalSoftcap: finalCap } : {}),
  };
}

/** The sliding-window layers: `layer_types` when given, else each family's rule. */
function slidingLayers(
  hf: HfConfig,
  architecture: DecoderArchitecture,
  layers: number,
  fail: (field: string, detail: string) => never,
): Partial<DecoderConfig> {
  const window = typeof hf['sliding_window'] === 'number' ? (hf['sliding_window'] as number) : undefined;
  let types: ('full' | 'sliding')[] | undefined;
  if (Array.isArray(hf['layer_types'])) {
    types = (hf['layer_types'] as unknown[]).map((t, i) => {
      if (t === 'full_attention') return 'full';
      if (t === 'sliding_attention') return 'sliding';
      return fail(`layer_types.${i}`, `${JSON.stringify(t)} is not supported (full_attention or sliding_attention)`);
    });
  } else if (architecture === 'gemma2') {
    types = Array.from({ length: layers }, (_, i) => ((i + 1) % 2 === 1 ? 'sliding' : 'full'));
  } else if (architecture === 'gemma3') {
    const pattern = typeof hf['sliding_window_pattern'] === 'number' ? (hf['sliding_window_pattern'] as number) : 6;
    types = Array.from({ length: layers }, (_, i) => ((i + 1) % pattern !== 0 ? 'sliding' : 'full'));
  } else if ((architecture === 'qwen2' || architecture === 'qwen3') && hf['use_sliding_window'] === true) {
    const from = typeof hf['max_window_layers'] === 'number' ? (hf['max_window_layers'] as number) : 28;
    types = Array.from({ length: layers }, (_, i) => (i >= from ? 'sliding' : 'full'));
  }
  if ((architecture === 'qwen2' || architecture === 'qwen3') && hf['use_sliding_window'] !== true) types = undefined;
  if (architecture === 'mistral' || architecture === 'phi3') {
    // Every layer slides when sliding_window is set; null: none. Absent: Mistral's default 4096, Phi-3's none.
    const width = hf['sliding_window'] === null ? undefined : (window ?? (architecture === 'mistral' ? 4096 : undefined));
    return width === undefined ? {} : { slidingWindow: width, layerTypes: Array.from({ length: layers }, () => 'sliding' as const) };
  }
  if (!types?.includes('sliding')) return {};
  if (window === undefined && architecture === 'gemma3') return { slidingWindow: 4096, layerTypes: types };
  if (window === undefined) return fail('sliding_window', 'missing, but layer_types has sliding layers');
  return { slidingWindow: window, layerTypes: types };
}

/** A config.json for a decoder (the older rope_theta / rope_scaling fields, which transformers 4 and 5 both read). */
export function huggingFaceDecoderConfig(
  config: DecoderConfig,
  special: { bos?: number | undefined; eos: number | readonly number[]; pad?: number | undefined },
): Record<string, unknown> {
  const headDim = config.headDim ?? config.dModel / config.heads;
  const scaling = config.ropeScaling;
  return {
    architectures: [hfArchitectureName(config.architecture)],
    model_type: MODEL_TYPES[config.architecture] ?? config.architecture,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.contextLength,
    hidden_size: config.dModel,
    intermediate_size: config.dFf ?? 4 * config.dModel,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    num_key_value_heads: config.kvHeads ?? config.heads,
    head_dim: headDim,
    [config.architecture === 'gemma2' || config.architecture === 'gemma3' ? 'hidden_activation' : 'hidden_act']: {
      silu: 'silu',
      gelu: 'gelu',
      gelu_tanh: 'gelu_pytorch_tanh',
    }[config.activation],
    rms_norm_eps: config.normEpsilon,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling ? ropeScalingJson(scaling) : null,
    ...(config.architecture === 'llama' ? { attention_bias: config.qkvBias, mlp_bias: config.mlpBias } : {}),
    ...(config.architecture === 'qwen3' || config.architecture === 'olmo2' ? { attention_bias: config.qkvBias } : {}),
    ...(config.architecture === 'gemma' ? { attention_bias: config.qkvBias } : {}),
    ...(config.architecture === 'gemma3' ? { rope_local_base_freq: config.slidingRopeTheta ?? config.ropeTheta, attention_bias: config.qkvBias } : {}),
    ...(config.architecture === 'gemma2' || config.architecture === 'gemma3'
      ? {
          query_pre_attn_scalar: Math.round(Math.pow(config.attentionScale ?? 1 / Math.sqrt(headDim), -2)),
          attn_logit_softcapping: config.attentionSoftcap ?? null,
          final_logit_softcapping: config.finalSoftcap ?? null,
        }
      : {}),
    ...(config.architecture === 'mistral' || config.architecture === 'phi3'
      ? { sliding_window: config.layerTypes ? config.slidingWindow : null }
      : config.layerTypes
        ? {
            sliding_window: config.slidingWindow,
            layer_types: config.layerTypes.map((t) => (t === 'sliding' ? 'sliding_attention' : 'full_attention')),
            ...(config.architecture === 'qwen2' || config.architecture === 'qwen3' ? { use_sliding_window: true } : {}),
          }
        : config.architecture === 'qwen2' || config.architecture === 'qwen3'
          ? { use_sliding_window: false }
          : {}),
    tie_word_embeddings: config.tiedHead,
    ...(special.bos !== undefined ? { bos_token_id: special.bos } : {}),
    eos_token_id: special.eos,
    ...(special.pad !== undefined ? { pad_token_id: special.pad } : {}),
    torch_dtype: 'float32',
  };
}

/** A rope scaling as config.json's `rope_scaling` writes it (the layout transformers 4 and 5 both read). */
function ropeScalingJson(scaling: NonNullable<DecoderConfig['ropeScaling']>): Record<string, unknown> {
  switch (scaling.type) {
    case 'linear':
    case 'dynamic':
      return { rope_type: scaling.type, factor: scaling.factor };
    case 'llama3':
      return {
        rope_type: 'llama3',
        factor: scaling.factor,
        low_freq_factor: scaling.lowFreqFactor,
        high_freq_factor: scaling.highFreqFactor,
        original_max_position_embeddings: scaling.originalContext,
      };
    case 'yarn':
      return {
        rope_type: 'yarn',
        factor: scaling.factor,
        original_max_position_embeddings: scaling.originalContext,
        beta_fast: scaling.betaFast,
        beta_slow: scaling.betaSlow,
        truncate: scaling.truncate,
        attention_factor: scaling.attentionFactor,
      };
    case 'longrope':
      return {
        rope_type: 'longrope',
        short_factor: scaling.shortFactor,
        long_factor: scaling.longFactor,
        original_max_position_embeddings: scaling.originalContext,
        attention_factor: scaling.attentionFactor,
      };
  }
}

/** Fields transformers 5 declares float and checks strictly: an integral value must be written 30.0, not 30. */
const FLOAT_FIELDS = [
  'final_logit_softcapping',
  'attn_logit_softcapping',
  'rms_norm_eps',
  'rope_theta',
  'rope_local_base_freq',
  'factor',
  'low_freq_factor',
  'high_freq_factor',
  'beta_fast',
  'beta_slow',
  'attention_factor',
];

/**
 * A config.json's text. JSON numbers carry no type, and JavaScript writes 30.0 as 30, which
 * transformers 5 refuses for a float field (Gemma 2's soft-caps: "expected float, got int"); those
 * fields are written with a decimal point.
 */
export function huggingFaceConfigText(config: Record<string, unknown>): string {
  const text = JSON.stringify(config, null, 2);
  return `${text.replace(new RegExp(`("(?:${FLOAT_FIELDS.join('|')})": )(-?\\d+)(?=[,\\n}])`, 'g'), '$1$2.0')}\n`;
}

/** The fields of a Hugging Face GPT-2 `config.json` that shape the network. */
export interface HfGpt2Config {
  model_type?: string;
  vocab_size: number;
  n_positions?: number;
  n_ctx?: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  activation_function?: string;
  tie_word_embeddings?: boolean;
}

/** Our config for a Hugging Face GPT-2 config, or a FormatError saying what is unsupported. */
export function gptConfigFromHuggingFace(hf: HfGpt2Config, source: string): GptConfig {
  if (hf.model_type !== undefined && hf.model_type !== 'gpt2') {
    throw new FormatError(source, `model_type ${JSON.stringify(hf.model_type)} is not supported; skd loads GPT-2-style checkpoints (model_type "gpt2")`);
  }
  const activation = hf.activation_function ?? 'gelu_new';
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(activation)) {
    throw new FormatError(source, `activation_function ${JSON.stringify(activation)} is not supported; skd's GPT uses the tanh GELU ("gelu_new")`);
  }
  const parsed = gptConfigSchema.safeParse({
    vocabSize: hf.vocab_size,
    contextLength: hf.n_positions ?? hf.n_ctx,
    layers: hf.n_layer,
    heads: hf.n_head,
    dModel: hf.n_embd,
    ...(hf.n_inner ? { dFf: hf.n_inner } : {}),
    positions: 'learned',
    tiedHead: hf.tie_word_embeddings ?? true,
    dropout: 0,
    layerNormEpsilon: hf.layer_norm_epsilon ?? 1e-5,
  });
  if (!parsed.success)
    throw new FormatError(source, `config does not describe a GPT-2: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
