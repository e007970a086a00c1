// Preload (node -r) for the forward-KL comparison in distill-workload.cjs: kernels named
// SkdForwardKl and SkdForwardKlGrad are never registered, so @skd/ops runs forward KL in its
// composite form from stock kernels, exactly as on a backend without the native addon.
const tf = require('@tensorflow/tfjs-core');

const skipped = new Set(['SkdForwardKl', 'SkdForwardKlGrad']);
const register = tf.registerKernel;
tf.registerKernel = (config) => (skipped.has(config.kernelName) ? undefined : register(config));
