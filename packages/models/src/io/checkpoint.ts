import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { FormatError, SkdError, type Tokenizer } from '@skd/core';
import { BpeTokenizer, type BpeTokenizerConfig } from '../bpe-tokenizer';
import { ByteTokenizer } from '../byte-tokenizer';
import { DecoderModel, decoderConfigSchema, decoderParameterShapes, halfAsParameter, loraConfigSchema } from '../decoder';
import { GptModel, gptConfigSchema } from '../gpt';
import { HfTokenizer } from '../tokenizers';
import { writeFileAtomic, writeFolderAtomic } from './atomic';
import { readSafetensors, writeSafetensorsStreaming, type StreamedArray } from './safetensors';

/**
 * A checkpoint is a folder: `config.json` (model architecture, tokenizer, and whatever the caller
 * adds), `model.safetensors`, and optionally `optimizer.safetensors`. It is written under a
 * temporary name and renamed into place, so a crash never leaves a half-written checkpoint at the
 * final path.
 */
export const CHECKPOINT_FORMAT = 'skd-checkpoint';

const checkpointConfigSchema = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(1),
  model: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('gpt'), config: gptConfigSchema }),
    /** outputVocab: the logit columns kept when the embedding is padded past the tokenizer. */
    /** lora: the adapters (adapter.safetensors) over the frozen weights, and the folder those came from when known. */
    z.strictObject({
      kind: z.literal('decoder'),
      config: decoderConfigSchema,
      outputVocab: z.number().int().min(2).optional(),
      lora: loraConfigSchema.extend({ base: z.string().optional() }).optional(),
      /** How the weight matrices are held (a LoRA student's 16-bit base); stored in model.safetensors as such. */
      dtype: z.enum(['bfloat16', 'float16']).optional(),
    }),
  ]),
  tokenizer: z.unknown(),
  /** The roles of a BPE tokenizer's special tokens (as tokenizer_config.json holds them). */
  tokenizerConfig: z.record(z.string(), z.unknown()).optional(),
  extra: z.record(z.string(), z.unknown()).default({}),
  /** SHA-256 of each weights file, verified on load (absent in the oldest checkpoints, which had none). */
  sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).optional(),
});

/** The models a checkpoint holds. */
export type CheckpointModel = GptModel | DecoderModel;

export interface SaveCheckpointOptions {
  readonly model: CheckpointModel;
  readonly tokenizer: Tokenizer;
  /** Optimizer (or any) tensors saved beside the weights for exact resume. */
  readonly optimizerState?: ReadonlyMap<string, tf.Tensor>;
  /** JSON-serialisable state saved in config.json (step, RNG state, sampler state, ...). */
  readonly extra?: Record<string, unknown>;
  /** Replace an existing checkpoint at `dir` (default: refuse). */
  readonly overwrite?: boolean;
}

export interface LoadedCheckpoint {
  readonly model: CheckpointModel;
  readonly tokenizer: Tokenizer;
  readonly optimizerState: Map<string, tf.Tensor> | undefined;
  readonly extra: Record<string, unknown>;
}

/** Tensors to stream into a safetensors file, each read from the device when its turn comes. */
export function streamedTensors(tensors: Iterable<[string, tf.Tensor]>): StreamedArray[] {
  return [...tensors].map(([name, tensor]) => ({
    name,
    shape: tensor.shape,
    dtype: tensor.dtype === 'int32' ? 'I32' : 'F32',
    data: async () => {
      const data = await tensor.data();
      return tensor.dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data);
    },
  }));
}

/** A 16-bit model's matrices to stream as BF16/F16, each in its parameter's shape (projections back to (in, out)). */
function streamedHalves(model: DecoderModel): StreamedArray[] {
  const shapes = decoderParameterShapes(model.config);
  return [...model.halves].map(([name, half]) => ({
    name,
    shape: shapes.get(name) ?? [...half.shape],
    dtype: half.dtype === 'bfloat16' ? 'BF16' : 'F16',
    data: () => halfAsParameter(name, half).data,
  }));
}

export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<void> {
  const target = path.resolve(dir);
  if (fs.existsSync(target) && !options.overwrite) {
    throw new SkdError(`checkpoint ${target} already exists`, { hint: 'choose another folder, or pass overwrite: true' });
  }
  await writeFolderAtomic(
    target,
    async (tmp) => {
      const checksums: Record<string, string> = {};
      const { model } = options;
      const weights = [...streamedTensors(model.params), ...(model instanceof DecoderModel ? streamedHalves(model) : [])];
      checksums['model.safetensors'] = await writeSafetensorsStreaming(path.join(tmp, 'model.safetensors'), weights, { format: 'skd' });
      if (model instanceof DecoderModel && model.lora)
        checksums['adapter.safetensors'] = await writeSafetensorsStreaming(path.join(tmp, 'adapter.safetensors'), streamedTensors(model.lora.variables), {
          format: 'skd',
        });
      if (options.optimizerState)
        checksums['optimizer.safetensors'] = await writeSafetensorsStreaming(path.join(tmp, 'optimizer.safetensors'), streamedTensors(options.optimizerState));
      const config = {
        format: CHECKPOINT_FORMAT,
        version: 1,
        model:
          options.model instanceof DecoderModel
            ? {
                kind: 'decoder',
                config: options.model.config,
                ...(options.model.vocabSize < options.model.config.vocabSize ? { outputVocab: options.model.vocabSize } : {}),
                ...(options.model.lora ? { lora: { ...options.model.lora.config, ...(options.model.loraBase ? { base: options.model.loraBase } : {}) } } : {}),
                ...(options.model.dtype !== 'float32' ? { dtype: options.model.dtype } : {}),
              }
            : { kind: 'gpt', config: options.model.config },
        tokenizer: options.tokenizer.toJSON(),
        ...(options.tokenizer instanceof BpeTokenizer ? { tokenizerConfig: options.tokenizer.tokenizerConfig() } : {}),
        extra: options.extra ?? {},
        sha256: checksums,
      };
      writeFileAtomic(path.join(tmp, 'config.json'), `${JSON.stringify(config, null, 1)}\n`);
    },
    { replace: true },
  );
}

/** Rebuilds a tokenizer from its `toJSON()` document (and, for BPE, the roles of its special tokens). */
export function tokenizerFromJSON(json: unknown, source: string, config?: Partial<BpeTokenizerConfig>): Tokenizer {
  const kind = (json as { kind?: string; model?: { type?: string } } | null)?.kind;
  if (kind === ByteTokenizer.kind) return new ByteTokenizer();
  if (kind === HfTokenizer.kind) {
    const { tokenizer, config: files, generation } = json as { tokenizer: unknown; config?: unknown; generation?: unknown };
    return new HfTokenizer({ tokenizer, ...(files !== undefined ? { config: files } : {}), ...(generation !== undefined ? { generation } : {}) }, source);
  }
  if ((json as { model?: { type?: string } } | null)?.model?.type === 'BPE') return BpeTokenizer.fromJSON(json, source, undefined, config);
  throw new FormatError(source, `unknown tokenizer document (kind ${JSON.stringify(kind)})`);
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(dir)) {
    throw new FormatError(dir, 'no such checkpoint folder', {
      hint: "check the path (relative paths are resolved against the config file's folder, or its baseDir)",
    });
  }
  if (!fs.existsSync(configFile)) {
    throw new FormatError(dir, 'not a checkpoint folder: config.json is missing', { hint: 'point at a folder written by saveCheckpoint or `skd train`' });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (cause) {
    throw new FormatError(configFile, `not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = checkpointConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FormatError(
      configFile,
      `not an skd checkpoint config: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const tokenizer = tokenizerFromJSON(parsed.data.tokenizer, configFile, parsed.data.tokenizerConfig as Partial<BpeTokenizerConfig> | undefined);
  const described = parsed.data.model;
  const logits = described.kind === 'decoder' ? (described.outputVocab ?? described.config.vocabSize) : described.config.vocabSize;
  if (tokenizer.vocabSize !== logits) {
    throw new FormatError(configFile, `tokenizer vocabulary ${tokenizer.vocabSize} does not match the model's ${logits}`);
  }
  const sums = parsed.data.sha256 ?? {};
  const weights = readSafetensors(path.join(dir, 'model.safetensors'), sums['model.safetensors']);
  const tensors = new Map([...weights.arrays].map(([name, a]) => [name, tf.tensor(a.data, [...a.shape])]));
  const lora = described.kind === 'decoder' ? described.lora : undefined;
  const adapterFile = path.join(dir, 'adapter.safetensors');
  if (lora && !fs.existsSync(adapterFile)) throw new FormatError(adapterFile, 'missing: config.json says the model trains LoRA adapters');
  const adapters = lora
    ? new Map([...readSafetensors(adapterFile, sums['adapter.safetensors']).arrays].map(([name, a]) => [name, tf.tensor(a.data, [...a.shape])]))
    : undefined;
  let model: CheckpointModel;
  try {
    if (described.kind === 'decoder') {
      const { base, ...adapterConfig } = lora ?? {};
      model = new DecoderModel(described.config, {
        weights: tensors,
        ...(described.outputVocab !== undefined ? { outputVocab: described.outputVocab } : {}),
        ...(described.dtype ? { dtype: described.dtype } : {}),
        ...(lora ? { lora: loraConfigSchema.parse(adapterConfig), adapters: adapters as Map<string, tf.Tensor>, ...(base ? { loraBase: base } : {}) } : {}),
      });
    } else {
      model = new GptModel(described.config, { weights: tensors });
    }
  } catch (cause) {
    throw new FormatError(path.join(dir, 'model.safetensors'), (cause as Error).message, { cause });
  } finally {
    tensors.forEach((t) => t.dispose());
    adapters?.forEach((t) => t.dispose());
  }
  const optimizerFile = path.join(dir, 'optimizer.safetensors');
  const optimizerState = fs.existsSync(optimizerFile)
    ? new Map(
        [...readSafetensors(optimizerFile, sums['optimizer.safetensors']).arrays].map(([name, a]) => [
          name,
          tf.tensor(a.data, [...a.shape], a.data instanceof Int32Array ? 'int32' : 'float32'),
        ]),
      )
    : undefined;
  return { model, tokenizer, optimizerState, extra: parsed.data.extra };
}
