import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, rowsOf, type KernelArgs, memoryOf } from './wasm';

/** The mixture's weight w and the two terms' weights a, b of SkdMixtureKl (see @skd/ops mixtureKlFromLogits). */
interface MixtureAttrs {
  readonly teacherWeight: number;
  readonly teacherTerm: number;
  readonly studentTerm: number;
}

/** A divergence kernel's value pass: (logP, logits, loss, lse, rows, width) views, then its attrs. */
type ValuePass = (
  logP: Float32Array,
  logits: Float32Array,
  loss: Float32Array,
  lse: Float32Array,
  rows: number,
  width: number,
  attrs: KernelArgs['attrs'],
) => void;
/** Its gradient pass: (dy, logP, logits, lse, dx, rows, width) views, then its attrs. */
type GradPass = (
  dy: Float32Array,
  logP: Float32Array,
  logits: Float32Array,
  lse: Float32Array,
  dx: Float32Array,
  rows: number,
  width: number,
  attrs: KernelArgs['attrs'],
) => void;

/** { logP, logits } → [loss, lse], both shaped like the logits without their last axis. */
function valueKernel(name: string, pass: ValuePass) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { logP, logits } = args.inputs as { logP: tf.TensorInfo; logits: tf.TensorInfo };
    requireFloat32(name, { logP, logits });
    const backend = memoryOf(args.backend);
    const shape = logits.shape.slice(0, -1);
    const loss = backend.makeOutput([...shape], 'float32');
    const lse = backend.makeOutput([...shape], 'float32');
    const { rows, width } = rowsOf(logits);
    if (rows > 0) pass(f32(backend, logP), f32(backend, logits), f32(backend, loss), f32(backend, lse), rows, width, args.attrs);
    return [loss, lse];
  };
}

/** { dy, logP, logits, lse } → dlogits, shaped like the logits. */
function gradKernel(name: string, pass: GradPass) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, logP, logits, lse } = args.inputs as Record<string, tf.TensorInfo>;
    requireFloat32(name, { dy, logP, logits, lse });
    const backend = memoryOf(args.backend);
    const x = logits as tf.TensorInfo;
    const dx = backend.makeOutput([...x.shape], 'float32');
    const { rows, width } = rowsOf(x);
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    if (rows > 0) pass(v(dy), v(logP), v(logits), v(lse), v(dx), rows, width, args.attrs);
    return dx;
  };
}

/** SkdForwardKl: { logP, logits } → [loss, lse]. */
export const forwardKlKernel = (addon: NativeAddon) =>
  valueKernel('SkdForwardKl', (logP, logits, loss, lse, rows, width) => addon.forwardKl(logP, logits, loss, lse, rows, width));

/** SkdForwardKlGrad: { dy, logP, logits, lse } → dlogits = dy (softmax(logits) - exp(logP)). */
export const forwardKlGradKernel = (addon: NativeAddon) =>
  gradKernel('SkdForwardKlGrad', (dy, logP, logits, lse, dx, rows, width) => addon.forwardKlGrad(dy, logP, logits, lse, dx, rows, width));

const weights = (attrs: KernelArgs['attrs']): [number, number, number] => {
  const { teacherWeight, teacherTerm, studentTerm } = attrs as unknown as MixtureAttrs;
  return [teacherWeight, teacherTerm, studentTerm];
};

/** SkdMixtureKl: { logP, logits } → [loss, lse]; attrs { teacherWeight, teacherTerm, studentTerm }. */
export const mixtureKlKernel = (addon: NativeAddon) =>
  valueKernel('SkdMixtureKl', (logP, logits, loss, lse, rows, width, attrs) => addon.mixtureKl(logP, logits, loss, lse, rows, width, ...weights(attrs)));

/** SkdMixtureKlGrad: { dy, logP, logits, lse } → dlogits; the forward kernel's attrs. */
export const mixtureKlGradKernel = (addon: NativeAddon) =>
  gradKernel('SkdMixtureKlGrad', (dy, logP, logits, lse, dx, rows, width, attrs) =>
    addon.mixtureKlGrad(dy, logP, logits, lse, dx, rows, width, ...weights(attrs)),
  );
