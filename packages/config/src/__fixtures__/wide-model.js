// A model with a different vocabulary than the tokenizer's, to prove the mismatch is caught.
const { defineComponent } = require('@skd/core');
const { BigramModel } = require('@skd/models');
const { z } = require('zod');

module.exports = {
  components: [
    defineComponent({
      component: 'model',
      kind: 'wide-bigram',
      summary: 'a bigram model with 300 tokens (a test fixture)',
      options: z.strictObject({}),
      create: (_options, deps) => new BigramModel({ vocabSize: 300, contextLength: 64, seed: deps.rng.tfSeed() }),
    }),
  ],
};
