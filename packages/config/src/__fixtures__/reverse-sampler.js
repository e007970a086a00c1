// A user's own sampler, loaded from a config by module path: trains on the reference reversed.
const { defineComponent } = require('@skd/core');
const { assembleBatch } = require('@skd/samplers');
const { z } = require('zod');

class ReverseReferenceSampler {
  constructor(options, deps) {
    this.options = options;
    this.deps = deps;
    this.calls = 0;
  }

  async sample(batch) {
    this.calls += 1;
    const rows = batch.prompts.map((prompt, i) => ({
      prompt,
      response: [...batch.references[i].slice(0, -1)].reverse().concat(batch.references[i].slice(-1)).slice(0, this.options.keep),
    }));
    const assembled = assembleBatch(rows, this.deps.tokenizer.special.pad, this.deps.student.contextLength);
    return {
      ...assembled,
      sources: rows.map(() => 'reversed'),
      stats: { marker: 7 },
      dispose: () => [assembled.tokens, assembled.attentionMask, assembled.targetMask].forEach((t) => t.dispose()),
    };
  }
}

module.exports = defineComponent({
  component: 'sampler',
  kind: 'reverse-reference',
  summary: 'the reference, reversed (a test fixture)',
  options: z.strictObject({ keep: z.number().int().min(1).default(1000) }),
  create: (options, deps) => new ReverseReferenceSampler(options, deps),
});
