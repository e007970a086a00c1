import type { JsonValue, KdBatch, KdSampler, PromptBatch } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, promptsOf, requireTeacher, rowsOf, teacherResponses, type SamplerModels } from './generating';

/**
 * SeqKD: trains on teacher-generated responses. With `cache`, each example's response is generated
 * once and reused across epochs (the classic recipe: distil the teacher's outputs into a dataset).
 */
export class SeqKdSampler implements KdSampler {
  static readonly kind = 'seq-kd';
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly models: SamplerModels,
    private readonly options: { readonly maxNewTokens: number; readonly sampling: SamplingOptions; readonly cache: boolean },
  ) {
    requireTeacher(models, SeqKdSampler.kind);
  }

  async sample(batch: PromptBatch): Promise<KdBatch> {
    const missing = batch.ids.map((id, i) => (this.options.cache && this.cache.has(id) ? -1 : i)).filter((i) => i >= 0);
    const fresh = missing.length
      ? await teacherResponses(this.models, SeqKdSampler.kind, promptsOf(batch, missing), this.options.maxNewTokens, this.options.sampling)
      : [];
    const responses: number[][] = batch.ids.map((id) => this.cache.get(id) ?? []);
    missing.forEach((i, k) => {
      responses[i] = fresh[k] as number[];
      if (this.options.cache) this.cache.set(batch.ids[i] as string, fresh[k] as number[]);
    });
    const generated = fresh.reduce((n, r) => n + r.length, 0);
    return batchOf(
      this.models,
      rowsOf(batch, responses),
      responses.map(() => 'teacher'),
      {
        tokensGenerated: generated,
        cacheHits: batch.ids.length - missing.length,
      },
    );
  }

  getState(): JsonValue {
    return { cache: [...this.cache] };
  }

  setState(state: JsonValue): void {
    this.cache.clear();
    for (const [id, tokens] of (state as { cache: [string, number[]][] }).cache) this.cache.set(id, tokens);
  }
}
