// SKD's speculative generation as the benchmark runs it: a 2-layer student drafting for a 4-layer
// teacher, block verification (gamma 5) against token-by-token (gamma 1), same prompts and seed.
// Fresh GPTs are near-uniform, so K is set high enough for the acceptance rate the comparison
// needs (>= 80%); the measured rate is reported beside the result.
const { Rng } = require('@skd/core');
const { GptModel, gptConfigSchema } = require('@skd/models');
const { speculativeGenerate } = require('@skd/samplers');
const { timeIt } = require('./harness.cjs');

const VOCAB = 256;

function gpt(layers, seed) {
  return new GptModel(gptConfigSchema.parse({ vocabSize: VOCAB, contextLength: 128, layers, heads: 4, dModel: 128 }), { seed });
}

async function runSkd({ quick = false, log = () => {} } = {}) {
  const student = gpt(2, 1);
  const teacher = gpt(4, 2);
  const B = 8;
  const newTokens = 64;
  const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: 8 }, (_, i) => (b * 31 + i * 7) % VOCAB));
  const k = 230;
  const run = async (draftBlock) => {
    let stats;
    const ms = await timeIt(
      async () => {
        const result = await speculativeGenerate(student, teacher, prompts, {
          maxNewTokens: newTokens,
          eos: -1,
          pad: 0,
          draftBlock,
          acceptance: { kind: 'top-k', k },
          acceptOn: 'raw',
          replace: 'resample',
          studentSampling: {},
          teacherSampling: {},
          keepTeacherLogProbs: true,
          rng: Rng.create(1),
        });
        stats = result.stats;
      },
      { warmup: 1, repeats: quick ? 1 : 3 },
    );
    const perRowTokens = stats.tokensGenerated / B;
    const summary = {
      draftBlock,
      topK: k,
      acceptanceRate: stats.accepted / stats.judged,
      teacherPassesPerToken: stats.teacherForwards / perRowTokens,
      studentPassesPerToken: stats.studentForwards / perRowTokens,
      tokensPerSecond: stats.tokensGenerated / (ms / 1000),
      ms,
    };
    log(
      `skd gamma ${draftBlock}: acceptance ${(summary.acceptanceRate * 100).toFixed(1)}%, ${summary.teacherPassesPerToken.toFixed(3)} teacher passes/token, ${summary.tokensPerSecond.toFixed(0)} tok/s`,
    );
    return summary;
  };
  const gamma1 = await run(1);
  const gamma5 = await run(5);
  student.dispose();
  teacher.dispose();
  return {
    skd: {
      setup: { student: '2 layers', teacher: '4 layers', dModel: 128, vocab: VOCAB, batch: B, newTokens, topK: k },
      gamma1,
      gamma5,
      acceptanceRate: gamma5.acceptanceRate,
      teacherPassesPerToken: gamma5.teacherPassesPerToken,
      speedupVsGamma1: gamma5.tokensPerSecond / gamma1.tokensPerSecond,
    },
  };
}

module.exports = { runSkd };
