import { ConfigError, ShapeError, SkdError, VocabularyMismatchError, describeValue } from './errors';

describe('errors', () => {
  it('append the fix and keep the cause chain', () => {
    const cause = new Error('disk full');
    const error = new SkdError('could not write checkpoint runs/a/step-10', { hint: 'free disk space', cause });
    expect(error.message).toBe('could not write checkpoint runs/a/step-10. Fix: free disk space');
    expect(error.cause).toBe(cause);
    expect(error).toBeInstanceOf(Error);
  });

  it('list every config issue with its path', () => {
    const error = new ConfigError('run.json', [
      { path: 'sampler.options.topK', message: 'topK must be >= 1, got 0' },
      { path: 'seeed', message: 'unknown key' },
    ]);
    expect(error.message).toContain('run.json');
    expect(error.message).toContain('sampler.options.topK: topK must be >= 1, got 0');
    expect(error.message).toContain('seeed: unknown key');
    expect(error.issues).toHaveLength(2);
  });

  it('name shapes and vocabularies', () => {
    expect(new ShapeError('teacher logits', '(B, T, V)', [2, 3]).message).toBe('teacher logits must have shape (B, T, V), got [2, 3]');
    const vocab = new VocabularyMismatchError('teacher vocab 259 vs student vocab 256');
    expect(vocab.message).toContain('teacher vocab 259 vs student vocab 256');
    expect(vocab.message).toContain('use the same tokenizer');
  });

  it('describe values briefly', () => {
    expect(describeValue('skdd')).toBe('"skdd"');
    expect(describeValue(3)).toBe('3');
    expect(describeValue({ a: 'x'.repeat(100) }).length).toBeLessThanOrEqual(80);
  });
});
