import * as tf from '@tensorflow/tfjs-core';

/**
 * Kernel names of the fused ops. A backend that registers a kernel under one of these names (as
 * @skd/native does for wasm) runs the op in one call; every other backend runs the op's composite
 * form, built from stock tfjs ops. The argument layout each kernel receives is documented beside
 * the op that calls it.
 */
export const KERNELS = {
  linear: 'SkdLinear',
  linearGrad: 'SkdLinearGrad',
  linearHalf: 'SkdLinearHalf',
  gatherHalf: 'SkdGatherHalf',
  spreadRows: 'SkdSpreadRows',
  layerNorm: 'SkdLayerNorm',
  layerNormGrad: 'SkdLayerNormGrad',
  rmsNorm: 'SkdRmsNorm',
  rmsNormGrad: 'SkdRmsNormGrad',
  rotary: 'SkdRotary',
  gatedActivation: 'SkdGatedActivation',
  gatedActivationGrad: 'SkdGatedActivationGrad',
  gelu: 'SkdGelu',
  geluGrad: 'SkdGeluGrad',
  attention: 'SkdAttention',
  attentionGrad: 'SkdAttentionGrad',
  cachedAttention: 'SkdCachedAttention',
  transformerDecode: 'SkdTransformerDecode',
  transformerGenerate: 'SkdTransformerGenerate',
  logSoftmax: 'SkdLogSoftmax',
  logSoftmaxGrad: 'SkdLogSoftmaxGrad',
  crossEntropy: 'SkdCrossEntropy',
  crossEntropyGrad: 'SkdCrossEntropyGrad',
  forwardKl: 'SkdForwardKl',
  forwardKlGrad: 'SkdForwardKlGrad',
  mixtureKl: 'SkdMixtureKl',
  mixtureKlGrad: 'SkdMixtureKlGrad',
  adamW: 'SkdAdamW',
  sampleTokens: 'SkdSampleTokens',
} as const;

export type KernelName = (typeof KERNELS)[keyof typeof KERNELS];

/** True when the active backend has a kernel for `name`. */
export function hasKernel(name: KernelName): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Runs a registered kernel (the caller checked `hasKernel`). */
export function runKernel<T extends tf.Tensor | tf.Tensor[]>(name: KernelName, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): T {
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as unknown as T;
}
