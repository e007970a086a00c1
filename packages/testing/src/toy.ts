import { Rng } from '@skd/core';

/**
 * Known next-token distributions for toy language models (`BigramModel.fromProbabilities` turns a
 * table into a model), and the closed forms samplers are tested against.
 */
export type Table = number[][];

/** A random row-stochastic (V, V) table; `sharpness` > 1 concentrates each row. */
export function randomTable(V: number, seed: number, sharpness = 1): Table {
  const rng = Rng.create(seed);
  return Array.from({ length: V }, () => {
    const raw = Array.from({ length: V }, () => Math.pow(rng.random() + 0.05, sharpness));
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((x) => x / sum);
  });
}

/** Indices of the k largest entries (ties by index, as the samplers break them). */
export function topKSet(probs: readonly number[], k: number): Set<number> {
  return new Set(
    probs
      .map((p, i) => [p, i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, k)
      .map(([, i]) => i),
  );
}

/**
 * SKD's per-position distribution: pS(y) 1[y in topK(pT)] + (mass of pS outside topK(pT)) pT(y)
 * (paper semantics: raw teacher distribution, replacement resampled from the teacher).
 */
export function skdClosedForm(pS: readonly number[], pT: readonly number[], k: number): number[] {
  const top = topKSet(pT, k);
  const rejected = pS.reduce((sum, p, y) => sum + (top.has(y) ? 0 : p), 0);
  return pS.map((p, y) => (top.has(y) ? p : 0) + rejected * (pT[y] as number));
}

/** Pearson chi-square statistic of observed counts against expected probabilities (cells with p = 0 must be empty). */
export function chiSquare(counts: readonly number[], probs: readonly number[], n: number): number {
  let chi = 0;
  probs.forEach((p, i) => {
    const observed = counts[i] ?? 0;
    if (p === 0) {
      if (observed > 0) chi = Infinity;
      return;
    }
    chi += (observed - p * n) ** 2 / (p * n);
  });
  return chi;
}
