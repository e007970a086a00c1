import { useBackend, tensorsLeakedBy } from '@skd/testing';
import { assembleBatch } from './assemble';
import { SupervisedSampler } from './supervised';

beforeAll(() => useBackend('cpu'));

describe('assembleBatch', () => {
  it('right-pads, marks real tokens and response targets, EOS included', () => {
    const batch = assembleBatch(
      [
        { prompt: [1, 2], response: [3, 9] },
        { prompt: [4], response: [5, 6, 9] },
      ],
      0,
      16,
    );
    expect(batch.tokens.arraySync()).toEqual([
      [1, 2, 3, 9],
      [4, 5, 6, 9],
    ]);
    expect(batch.attentionMask.arraySync()).toEqual([
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    expect(batch.targetMask.arraySync()).toEqual([
      [0, 0, 1, 1],
      [0, 1, 1, 1],
    ]);
    expect(batch.targetCount).toBe(5);
    [batch.tokens, batch.attentionMask, batch.targetMask].forEach((t) => t.dispose());
  });

  it('keeps an EOS that equals the pad id as a target (masks come from lengths)', () => {
    const pad = 9;
    const batch = assembleBatch(
      [
        { prompt: [1], response: [2, pad] },
        { prompt: [1], response: [pad] },
      ],
      pad,
      8,
    );
    expect(batch.targetMask.arraySync()).toEqual([
      [0, 1, 1],
      [0, 1, 0],
    ]);
    expect(batch.attentionMask.arraySync()).toEqual([
      [1, 1, 1],
      [1, 1, 0],
    ]);
    [batch.tokens, batch.attentionMask, batch.targetMask].forEach((t) => t.dispose());
  });

  it('rejects empty batches, empty prompts and rows longer than the context', () => {
    expect(() => assembleBatch([], 0, 4)).toThrow('empty batch');
    expect(() => assembleBatch([{ prompt: [], response: [1] }], 0, 4)).toThrow('row 0 has an empty prompt');
    expect(() => assembleBatch([{ prompt: [1, 2], response: [3, 4, 5] }], 0, 4)).toThrow(
      'row 0 (prompt 2 + response 3 tokens) must have shape at most 4 tokens, got 5 tokens',
    );
  });
});

describe('SupervisedSampler', () => {
  it('trains on the references and frees its tensors', async () => {
    const sampler = new SupervisedSampler({ pad: 0, contextLength: 16 });
    const leaked = await tensorsLeakedBy(async () => {
      const batch = await sampler.sample({ prompts: [[1]], references: [[2, 3]], ids: ['a'] });
      expect(batch.tokens.arraySync()).toEqual([[1, 2, 3]]);
      expect(batch.sources).toEqual(['reference']);
      expect(batch.stats).toEqual({ targetTokens: 2, tokensGenerated: 0 });
      expect(batch.teacherLogProbs).toBeUndefined();
      batch.dispose();
    });
    expect(leaked).toBe(0);
  });
});
