// A KD method in a folder of its own: SKD whose rejected drafts are replaced by the teacher's
// argmax for the first part of training, then by teacher samples (the paper's SKD). It builds two
// built-in SKD samplers through their public option factory and hands each batch to one of them.
// A config selects it with { "kind": "skd-argmax-warmup", "module": "<path to this file>" }.
const { z } = require('zod');
const { defineComponent } = require('@skd/core');
const { skdEntry, skdSamplerOptions } = require('@skd/samplers');

module.exports = defineComponent({
  component: 'sampler',
  kind: 'skd-argmax-warmup',
  summary: 'SKD with argmax replacement for the first warmupFraction of training, then teacher samples',
  options: z.strictObject({
    warmupFraction: z.number().min(0).max(1).default(0.5).describe('share of training with argmax replacement'),
    topK: z.number().int().min(1).default(25).describe('drafts inside the teacher\'s top-K are accepted'),
    maxNewTokens: z.number().int().min(1).default(64).describe('longest response'),
  }),
  create: (options, deps) => {
    const shared = { topK: options.topK, maxNewTokens: options.maxNewTokens };
    const argmax = skdEntry.create(skdSamplerOptions({ ...shared, replace: 'argmax' }), deps);
    const resample = skdEntry.create(skdSamplerOptions(shared), deps);
    return {
      sample: (batch, context) => {
        const warm = context.step < options.warmupFraction * context.totalSteps;
        return (warm ? argmax : resample).sample(batch, context);
      },
      dispose: () => {
        argmax.dispose?.();
        resample.dispose?.();
      },
    };
  },
});
