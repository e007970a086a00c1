#!/usr/bin/env node
// Cost of each divergence, value only and value + gradient, at (B=16, T=128, V=256) and
// (B=4, T=128, V=32000), dense and with sparse top-k. Run: npm run bench:divergences
// (builds first). Options: --backend=wasm|cpu|auto (default auto), --repeats=N.
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { divergenceEntries } = require('@skd/divergences');
const { timeIt, table } = require('./harness.cjs');

const arg = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];

(async () => {
  const backend = await selectBackend({ backend: arg('backend', 'auto') });
  console.log(backend.summary);
  const repeats = Number(arg('repeats', 3));
  const shapes = [
    [16, 128, 256],
    [4, 128, 32000],
  ];
  const kinds = ['forward-kl', 'reverse-kl', 'jsd', 'tvd', 'skew-kl', 'skew-reverse-kl', 'cross-entropy'];
  const rows = [];
  for (const [B, T, V] of shapes) {
    const teacher = tf.randomNormal([B, T, V], 0, 2, 'float32', 1);
    const student = tf.randomNormal([B, T, V], 0, 2, 'float32', 2);
    const targets = tf.cast(tf.randomUniform([B, T], 0, V, 'float32', 3), 'int32');
    const variants = kinds.flatMap((kind) =>
      kind === 'cross-entropy'
        ? [[kind, {}]]
        : [
            [kind, {}],
            [kind, { sparseTopK: 32 }],
          ],
    );
    for (const [kind, options] of variants) {
      const entry = divergenceEntries.find((e) => e.kind === kind);
      const divergence = entry.create(entry.options.parse(options), {});
      const value = () => tf.tidy(() => divergence.perToken({ teacherLogits: teacher, studentLogits: student, targets }).dataSync());
      const gradient = () =>
        tf.tidy(() =>
          tf
            .grad((s) => tf.sum(divergence.perToken({ teacherLogits: teacher, studentLogits: s, targets })))(student)
            .dataSync(),
        );
      const forwardMs = await timeIt(value, { repeats });
      const backwardMs = await timeIt(gradient, { repeats });
      rows.push({
        shape: `${B}x${T}x${V}`,
        divergence: kind + (options.sparseTopK ? ` (top-${options.sparseTopK})` : ''),
        'value ms': forwardMs.toFixed(1),
        'value+grad ms': backwardMs.toFixed(1),
        'Mtok/s (v+g)': ((B * T) / backwardMs / 1e3).toFixed(3),
      });
      console.log(`${rows.at(-1).shape} ${rows.at(-1).divergence}: ${forwardMs.toFixed(1)} / ${backwardMs.toFixed(1)} ms`);
    }
    tf.dispose([teacher, student, targets]);
  }
  console.log(`\n${table(rows, ['shape', 'divergence', 'value ms', 'value+grad ms', 'Mtok/s (v+g)'])}`);
  console.log(JSON.stringify({ bench: 'divergences', backend: backend.name, results: rows }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
