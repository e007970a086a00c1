// Preload (node -r) for the fused-divergence comparisons in distill-workload.cjs: the kernels named
// in SKD_SKIP_KERNELS (comma-separated) are never registered, so @skd/ops runs those ops in their
// composite form from stock kernels, exactly as on a backend without the native addon.
const tf = require('@tensorflow/tfjs-core');

const skipped = new Set((process.env.SKD_SKIP_KERNELS ?? '').split(',').filter(Boolean));
const register = tf.registerKernel;
tf.registerKernel = (config) => (skipped.has(config.kernelName) ? undefined : register(config));
