#!/usr/bin/env node
// One side of the pretrained-shape benchmark (tools/bench/pretrained.cjs runs it in a child process,
// so its peak memory is its own): skd's DecoderModel at a shape of pretrained-shapes.json, random
// weights, on the backend a run of that size gets (native). Prints one JSON line.
//   --shape=NAME --task=train|generate|forward|verify --steps=N --warmup=N [--B=4 --T=256] [--prompt=32 --new=64 --batch=1]
//   [--prompt=96 --block=6 for verify]
//   [--lora=RANK: LoRA adapters of that rank on all seven projections, the weights frozen]
//   [--dtype=float32|bfloat16|float16: how the weight matrices are held (16 bits: a frozen teacher's)]
// Tasks: train (a step: forward, loss, backward, AdamW), generate (greedy, KV cache; ms per token),
// forward (logits of B x T tokens without gradients: a teacher scoring a batch), verify (one cached
// pass over a block of drafts per row after a prefill: SKD's verification; ms per call).
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { Rng } = require('@skd/core');
const { DecoderModel, decoderConfig, decoderParameterShapes, generate, loraConfigSchema } = require('@skd/models');
const { HalfMatrix } = require('@skd/ops');
const { CrossEntropy, chunkedTokenLoss, tokenLoss } = require('@skd/divergences');
const { AdamW } = require('@skd/trainer');
const shapes = require('./pretrained-shapes.json');

/**
 * Random weights for timing, filled by a xorshift generator (tfjs's seeded normal draws take most of a
 * minute for 0.5B parameters on this machine): uniform with a standard deviation of 0.02, norms at 1.
 * A 16-bit model's matrices are made 16-bit one at a time, so no float32 copy of it exists at once.
 */
function quickWeights(config, dtype) {
  let state = 2463534242;
  const weights = new Map();
  for (const [name, shape] of decoderParameterShapes(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) values.fill(config.normOffset === 1 ? 0 : 1);
    else if (!name.endsWith('.bias'))
      for (let i = 0; i < values.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        values[i] = ((state >>> 0) / 4294967296 - 0.5) * 0.0693;
      }
    // 16-bit projections are given (out, in), their checkpoints' layout (DecoderInit.weights).
    const projection = /^model\.layers\.\d+\..*_proj\.weight$/.test(name);
    weights.set(
      name,
      dtype !== 'float32' && shape.length === 2 ? HalfMatrix.fromFloat32(values, projection ? [shape[1], shape[0]] : shape, dtype) : tf.tensor(values, shape),
    );
  }
  return weights;
}

const arg = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];

(async () => {
  const shape = shapes[arg('shape', 'smollm2-135m')];
  const task = arg('task', 'train');
  const steps = Number(arg('steps', 3));
  const warmup = Number(arg('warmup', 1));
  // --checkpoint=true: gradient checkpointing per block (training.checkpointLayers).
  const checkpointLayers = arg('checkpoint', 'false') === 'true';
  // --chunk=N: the vocabulary loss N positions at a time (training.lossChunk).
  const chunk = Number(arg('chunk', 0));
  const backend = await selectBackend({ backend: arg('backend', 'native') });
  const rank = Number(arg('lora', 0));
  const dtype = arg('dtype', 'float32');
  const config = decoderConfig(shape.skd);
  const weights = quickWeights(config, dtype);
  const model = new DecoderModel(config, {
    weights,
    dtype,
    ...(rank > 0 ? { lora: loraConfigSchema.parse({ rank, alpha: 2 * rank }), seed: 1 } : {}),
  });
  weights.forEach((t) => (t instanceof HalfMatrix ? undefined : t.dispose()));
  const rng = Rng.create(7);
  const times = [];
  let result;
  if (task === 'train') {
    const B = Number(arg('B', 4));
    const T = Number(arg('T', 256));
    const tokens = tf.tensor2d(
      Int32Array.from({ length: B * T }, () => rng.int(model.vocabSize)),
      [B, T],
      'int32',
    );
    const mask = tf.ones([B, T]);
    // The trainer's optimizer: AdamW (no decay here, as PyTorch's Adam), gradients of the token loss.
    const optimizer = new AdamW(model.trainableVariables, { learningRate: 1e-4, weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    const ce = new CrossEntropy();
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(
        () =>
          chunk > 0
            ? chunkedTokenLoss({
                divergence: ce,
                tokens,
                targetMask: mask,
                studentFeatures: model.features(tokens, { checkpointLayers }),
                outputLayer: model.outputLayer,
                chunk,
              })
            : tokenLoss({ divergence: ce, tokens, targetMask: mask, studentLogits: model.logits(tokens, { checkpointLayers }) }),
        model.trainableVariables,
      );
      const ordered = model.trainableVariables.map((v) => grads[v.name]);
      optimizer.apply(ordered, 1e-4);
      tf.dispose(ordered);
      await value.data(); // asynchronously: a GPU backend (webgpu) cannot read synchronously
      value.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
    }
    result = { B, T };
  } else if (task === 'forward') {
    const B = Number(arg('B', 4));
    const T = Number(arg('T', 96));
    const tokens = tf.tensor2d(
      Int32Array.from({ length: B * T }, () => rng.int(model.vocabSize)),
      [B, T],
      'int32',
    );
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const logits = tf.tidy(() => model.logits(tokens));
      await logits.data();
      logits.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
    }
    result = { B, T };
  } else if (task === 'verify') {
    // SKD's verification: after a prefill of B prompts, one cached pass over a block of S drafts per
    // row (every position's logits), rolled back after each call so every call sees the same cache.
    const B = Number(arg('B', 4));
    const P = Number(arg('prompt', 96));
    const S = Number(arg('block', 6));
    const random = (n) => Int32Array.from({ length: n }, () => rng.int(model.vocabSize));
    const state = model.startDecoding(B, P + S);
    const prompt = tf.tensor2d(random(B * P), [B, P], 'int32');
    model.decode(prompt, state, { lastOnly: true }).dispose();
    prompt.dispose();
    const block = tf.tensor2d(random(B * S), [B, S], 'int32');
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const logits = model.decode(block, state);
      await logits.data();
      logits.dispose();
      state.rollback(new Array(B).fill(P));
      if (i >= warmup) times.push(performance.now() - t0);
    }
    block.dispose();
    state.dispose();
    result = { B, prompt: P, block: S };
  } else {
    const batch = Number(arg('batch', 1));
    const P = Number(arg('prompt', 32));
    const newTokens = Number(arg('new', 64));
    const prompts = Array.from({ length: batch }, () => Array.from({ length: P }, () => rng.int(model.vocabSize)));
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const out = await generate(model, prompts, { maxNewTokens: newTokens, eos: -1, pad: 0, rng: Rng.create(1), greedy: true });
      if (i >= warmup) times.push((performance.now() - t0) / out.tokens.reduce((n, r) => n + r.length, 0));
    }
    result = { batch, prompt: P, newTokens };
  }
  const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  console.log(
    JSON.stringify({
      side: 'skd',
      backend: backend.name,
      task,
      parameters: model.parameterCount,
      trainableParameters: model.trainableParameterCount,
      ...(rank > 0 ? { lora: rank } : {}),
      dtype,
      ...result,
      ms: median,
      times,
      maxRssGB: process.resourceUsage().maxRSS / 1e6,
    }),
  );
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
