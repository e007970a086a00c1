import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, type KernelArgs, memoryOf } from './wasm';

function geometry(kernel: string, x: tf.TensorInfo): { rows: number; hidden: number } {
  const [rows, width] = x.shape as [number, number];
  if (x.shape.length !== 2 || width % 2 !== 0) throw new Error(`${kernel}: x of shape [${x.shape.join(', ')}] is not (N, 2 * hidden)`);
  return { rows, hidden: width / 2 };
}

/** SkdGatedActivation: { x (N, 2f) gate | up }, { activation: 0 silu, 1 gelu, 2 gelu_tanh } → act(gate) up (N, f). */
export function gatedActivationKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { activation } = args.attrs as { activation: number };
    requireFloat32('SkdGatedActivation', { x });
    const { rows, hidden } = geometry('SkdGatedActivation', x);
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([rows, hidden], 'float32');
    addon.gatedActivation(f32(backend, x), f32(backend, y), rows, hidden, activation);
    return y;
  };
}

/** SkdGatedActivationGrad: { dy (N, f), x (N, 2f) }, same attrs → dx (N, 2f). */
export function gatedActivationGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    const { activation } = args.attrs as { activation: number };
    requireFloat32('SkdGatedActivationGrad', { dy, x });
    const { rows, hidden } = geometry('SkdGatedActivationGrad', x);
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([rows, 2 * hidden], 'float32');
    addon.gatedActivationGrad(f32(backend, dy), f32(backend, x), f32(backend, dx), rows, hidden, activation);
    return dx;
  };
}
