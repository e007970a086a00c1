// The project's own GPT, as the benchmarks run it: a training step (Adam, cross-entropy over all
// next tokens) and batched generation with and without the KV cache. Requires built packages.
const tf = require('@tensorflow/tfjs-core');
const { Rng } = require('@skd/core');
const { GptModel, gptConfigSchema, generate } = require('@skd/models');
const { CrossEntropy, tokenLoss } = require('@skd/divergences');

const VOCAB = 256;

function buildModel({ d, T, layers = 2 }) {
  return new GptModel(gptConfigSchema.parse({ vocabSize: VOCAB, contextLength: Math.max(T, 128), layers, heads: d / 32, dModel: d }), { seed: 1 });
}

function randomTokens(rng, B, T) {
  return tf.tensor2d(Int32Array.from({ length: B * T }, () => rng.int(VOCAB)), [B, T], 'int32');
}

/** A closure running one optimizer step; returns the loss. */
function trainingStep(model, { B, T }) {
  const rng = Rng.create(7);
  const tokens = randomTokens(rng, B, T);
  const mask = tf.ones([B, T]);
  const optimizer = tf.train.adam(1e-3);
  const ce = new CrossEntropy();
  const step = () => {
    const cost = optimizer.minimize(
      () => tokenLoss({ divergence: ce, tokens, targetMask: mask, studentLogits: model.logits(tokens) }),
      true,
      model.trainableVariables,
    );
    const loss = cost.dataSync()[0];
    cost.dispose();
    return loss;
  };
  step.dispose = () => {
    tf.dispose([tokens, mask]);
    optimizer.dispose();
  };
  return step;
}

function prompts(B, P) {
  const rng = Rng.create(3);
  return Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(VOCAB)));
}

/** Generation with the KV cache (the model's decode path). */
async function generateCached(model, { B, P = 8, newTokens }) {
  const result = await generate(model, prompts(B, P), { maxNewTokens: newTokens, eos: -1, pad: 0, rng: Rng.create(1), greedy: true });
  return result.tokens.reduce((n, row) => n + row.length, 0);
}

/** Generation recomputing the full prefix every step (no cache), greedy, for the cache's ratio. */
async function generateUncached(model, { B, P = 8, newTokens }) {
  const rows = prompts(B, P);
  for (let step = 0; step < newTokens; step++) {
    const next = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d(rows.flat(), [B, rows[0].length], 'int32')); // (B, L, V)
      const last = tf.slice(logits, [0, rows[0].length - 1, 0], [B, 1, VOCAB]);
      return tf.argMax(tf.reshape(last, [B, VOCAB]), 1).dataSync();
    });
    rows.forEach((row, b) => row.push(next[b]));
  }
  return B * newTokens;
}

module.exports = { buildModel, trainingStep, generateCached, generateUncached, VOCAB };
