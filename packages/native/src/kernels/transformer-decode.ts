import type * as tf from '@tensorflow/tfjs-core';
import type { GptShape, NativeAddon } from '../addon';
import { f32, i32, type KernelArgs, memoryOf } from './wasm';

interface ModelAttrs {
  readonly layers: number;
  readonly heads: number;
  readonly dModel: number;
  readonly dFf: number;
  readonly vocab: number;
  readonly capacity: number;
  readonly contextRows: number;
  readonly epsilon: number;
  readonly rotary: boolean;
  readonly parameterCount: number;
}

const INT_INPUTS = new Set(['tokens', 'positions', 'lengths', 'feed', 'live', 'budgets', 'rng']);

/** Views of the weights and caches, and the model's shape, from the named inputs (see @skd/ops transformer-decode). */
function model(args: KernelArgs, kernel: string, batch: number) {
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  const a = args.attrs as unknown as ModelAttrs;
  for (const [name, t] of Object.entries(inputs)) {
    const want = INT_INPUTS.has(name) ? 'int32' : 'float32';
    if (t.dtype !== want) throw new Error(`${kernel}: input ${name} must be ${want}, got ${t.dtype}`);
  }
  const backend = memoryOf(args.backend);
  const view = (name: string) => f32(backend, inputs[name] as tf.TensorInfo);
  const shape: GptShape = [batch, a.layers, a.heads, a.dModel, a.dFf, a.vocab, a.capacity, a.contextRows, a.epsilon, a.rotary];
  return {
    inputs,
    backend,
    shape,
    params: () => Array.from({ length: a.parameterCount }, (_, i) => view(`p${i}`)),
    keys: () => Array.from({ length: a.layers }, (_, i) => view(`k${i}`)),
    values: () => Array.from({ length: a.layers }, (_, i) => view(`v${i}`)),
    view,
    vocab: a.vocab,
  };
}

/** SkdTransformerDecode: one GPT decode step over the native KV cache. */
export function transformerDecodeKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const tokens = (args.inputs as Record<string, tf.TensorInfo>)['tokens'] as tf.TensorInfo;
    const [B, S] = tokens.shape as [number, number];
    const m = model(args, 'SkdTransformerDecode', B);
    const { lastOnly } = args.attrs as { lastOnly: boolean };
    const logits = m.backend.makeOutput([lastOnly ? B : B * S, m.vocab], 'float32');
    const ints = (name: string) => i32(m.backend, m.inputs[name] as tf.TensorInfo);
    addon.gptDecode(
      m.params(),
      m.keys(),
      m.values(),
      ints('tokens'),
      ints('positions'),
      m.view('mask'),
      ints('lengths'),
      f32(m.backend, logits),
      S,
      lastOnly,
      ...m.shape,
    );
    return logits;
  };
}

interface LoopAttrs {
  readonly steps: number;
  readonly eos: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly greedy: boolean;
}

/** SkdTransformerGenerate: a whole sampling loop over the native KV cache (see @skd/ops transformerGenerate). */
export function transformerGenerateKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const lengthsIn = (args.inputs as Record<string, tf.TensorInfo>)['lengths'] as tf.TensorInfo;
    const B = lengthsIn.shape[0] as number;
    const m = model(args, 'SkdTransformerGenerate', B);
    const l = args.attrs as unknown as LoopAttrs;
    const outputs = [
      m.backend.makeOutput([B, l.steps], 'int32'),
      m.backend.makeOutput([B], 'int32'),
      m.backend.makeOutput([B], 'int32'),
      m.backend.makeOutput([4], 'int32'),
      m.backend.makeOutput([2], 'int32'),
    ] as const;
    const [tokens, counts, lengths, rng, status] = outputs.map((t) => i32(m.backend, t)) as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
    const ints = (name: string) => i32(m.backend, m.inputs[name] as tf.TensorInfo);
    lengths.set(ints('lengths'));
    rng.set(ints('rng'));
    const logits = m.inputs['logits'] ? m.view('logits') : null;
    const failed = addon.gptGenerate(
      m.params(),
      m.keys(),
      m.values(),
      lengths,
      logits,
      ints('feed'),
      ints('live'),
      ints('budgets'),
      rng,
      tokens,
      counts,
      l.steps,
      l.eos,
      l.temperature,
      l.topK,
      l.topP,
      l.greedy,
      ...m.shape,
    );
    status[0] = failed;
    status[1] = failed >= 0 ? (tokens[failed * l.steps + (counts[failed] as number)] as number) : 0;
    return [...outputs];
  };
}
