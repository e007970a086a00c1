// The project's own GPT, as the benchmarks run it: a training step (AdamW without decay, i.e. Adam,
// cross-entropy over all next tokens, as tools/bench/torch_gpt.py does) and batched greedy generation
// with and without the KV cache. Requires built packages.
const tf = require('@tensorflow/tfjs-core');
const { Rng } = require('@skd/core');
const { GptModel, gptConfigSchema, generate } = require('@skd/models');
const { CrossEntropy, tokenLoss } = require('@skd/divergences');
const { AdamW } = require('@skd/trainer');

/** Bench shapes: heads of 32 (d / 32 heads), learned positions, tied head, MLP 4d. */
function buildModel({ d, T, layers = 2, vocab = 256 }) {
  return new GptModel(gptConfigSchema.parse({ vocabSize: vocab, contextLength: Math.max(T, 128), layers, heads: d / 32, dModel: d }), { seed: 1 });
}

/**
 * Model FLOPs of one training step (forward + backward = 3x forward), the MFU convention: every
 * matmul of the network, attention counted over the full T x T (causal halving not credited).
 */
function trainingStepFlops({ d, T, B, layers = 2, vocab = 256 }) {
  const tokens = B * T;
  const perLayer = 24 * tokens * d * d + 4 * B * T * T * d;
  return 3 * (layers * perLayer + 2 * tokens * d * vocab);
}

function randomTokens(rng, B, T, vocab) {
  return tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(vocab)),
    [B, T],
    'int32',
  );
}

/** A closure running one optimizer step; returns the loss. */
function trainingStep(model, { B, T, vocab = 256 }) {
  const rng = Rng.create(7);
  const tokens = randomTokens(rng, B, T, vocab);
  const mask = tf.ones([B, T]);
  const optimizer = new AdamW(model.trainableVariables, { learningRate: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  const ce = new CrossEntropy();
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => tokenLoss({ divergence: ce, tokens, targetMask: mask, studentLogits: model.logits(tokens) }),
      model.trainableVariables,
    );
    const ordered = model.trainableVariables.map((v) => grads[v.name]);
    optimizer.apply(ordered, 1e-3);
    tf.dispose(ordered);
    const loss = value.dataSync()[0];
    value.dispose();
    return loss;
  };
  step.dispose = () => {
    tf.dispose([tokens, mask]);
    optimizer.dispose();
  };
  return step;
}

function prompts(B, P, vocab) {
  const rng = Rng.create(3);
  return Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(vocab)));
}

/** Generation with the KV cache (the model's decode path), greedy. */
async function generateCached(model, { B, P = 8, newTokens, vocab = 256 }) {
  const result = await generate(model, prompts(B, P, vocab), { maxNewTokens: newTokens, eos: -1, pad: 0, rng: Rng.create(1), greedy: true });
  return result.tokens.reduce((n, row) => n + row.length, 0);
}

/** Generation recomputing the full prefix every step (no cache), greedy, for the cache's ratio. */
async function generateUncached(model, { B, P = 8, newTokens, vocab = 256 }) {
  const rows = prompts(B, P, vocab);
  for (let step = 0; step < newTokens; step++) {
    const next = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d(rows.flat(), [B, rows[0].length], 'int32')); // (B, L, V)
      const last = tf.slice(logits, [0, rows[0].length - 1, 0], [B, 1, vocab]);
      return tf.argMax(tf.reshape(last, [B, vocab]), 1).dataSync();
    });
    rows.forEach((row, b) => row.push(next[b]));
  }
  return B * newTokens;
}

module.exports = { buildModel, trainingStep, trainingStepFlops, generateCached, generateUncached };
