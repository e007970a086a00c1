import type { JsonValue, KdBatch, KdSampler, PromptBatch, SamplerContext, SamplerFeedback } from '@skd/core';

/**
 * One sampler for the first part of training, another after: the SKD authors' `mixed_train`
 * (ground truth for the first half, then on-policy) as a composition of existing samplers. Step s
 * of T uses `first` while s < round(at * T), then `then`. Feedback goes to both, and a checkpoint
 * keeps both one's state, so a resumed run switches at the same step with the same buffers.
 */
export class SwitchSampler implements KdSampler {
  static readonly kind = 'switch';

  constructor(
    private readonly first: KdSampler,
    private readonly then: KdSampler,
    private readonly at: number,
  ) {}

  /** The step (0-based) from which `then` samples. */
  switchStep(totalSteps: number): number {
    return Math.round(this.at * totalSteps);
  }

  async sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch> {
    const later = context.step >= this.switchStep(context.totalSteps);
    const sampled = await (later ? this.then : this.first).sample(batch, context);
    return { ...sampled, stats: { ...sampled.stats, switched: later ? 1 : 0 }, dispose: () => sampled.dispose() };
  }

  observe(feedback: SamplerFeedback): void {
    this.first.observe?.(feedback);
    this.then.observe?.(feedback);
  }

  getState(): JsonValue {
    return { first: this.first.getState?.() ?? null, then: this.then.getState?.() ?? null };
  }

  setState(state: JsonValue): void {
    const parts = state as { first?: JsonValue; then?: JsonValue } | null;
    if (parts?.first !== undefined && parts.first !== null) this.first.setState?.(parts.first);
    if (parts?.then !== undefined && parts.then !== null) this.then.setState?.(parts.then);
  }

  dispose(): void {
    this.first.dispose?.();
    this.then.dispose?.();
  }
}
