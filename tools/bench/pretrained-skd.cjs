#!/usr/bin/env node
// One side of the pretrained-shape benchmark (tools/bench/pretrained.cjs runs it in a child process,
// so its peak memory is its own): skd's DecoderModel at a shape of pretrained-shapes.json, random
// weights, on the backend a run of that size gets (native). Prints one JSON line.
//   --shape=NAME --task=train|generate --steps=N --warmup=N [--B=4 --T=256] [--prompt=32 --new=64 --batch=1]
//   [--lora=RANK: LoRA adapters of that rank on all seven projections, the weights frozen]
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { Rng } = require('@skd/core');
const { DecoderModel, decoderConfig, generate, loraConfigSchema } = require('@skd/models');
const { CrossEntropy, chunkedTokenLoss, tokenLoss } = require('@skd/divergences');
const { AdamW } = require('@skd/trainer');
const shapes = require('./pretrained-shapes.json');

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
  const model = new DecoderModel(decoderConfig(shape.skd), { seed: 1, ...(rank > 0 ? { lora: loraConfigSchema.parse({ rank, alpha: 2 * rank }) } : {}) });
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
      value.dataSync();
      value.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
    }
    result = { B, T };
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
