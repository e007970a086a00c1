import { SkdError } from './errors';

/**
 * The seeded random source every random choice in skd draws from (sampling, shuffling, dropout
 * seeds, schedules). xoshiro128** seeded through splitmix32: fast in 32-bit JS arithmetic,
 * statistically sound, and its whole state is four integers, so it checkpoints exactly.
 *
 * `fork(label)` gives a component its own stream derived from the run seed and the label only, not
 * from how much the parent has been used, so adding a draw in one component never shifts another's.
 */
export interface RngState {
  readonly seed: number;
  readonly path: readonly string[];
  readonly s: readonly [number, number, number, number];
}

const TWO_POW_32 = 4294967296;

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(text: string, basis: number): number {
  let h = (0x811c9dc5 ^ basis) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  private constructor(
    readonly seed: number,
    readonly path: readonly string[],
  ) {
    let mixed = seed >>> 0;
    for (const label of path) mixed = hashString(label, mixed);
    const next = splitmix32(mixed);
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static create(seed: number): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new SkdError(`seed must be a non-negative integer, got ${seed}`, { hint: 'set seed (at the top level of the config) to e.g. 42' });
    }
    return new Rng(seed % TWO_POW_32, []);
  }

  static fromState(state: RngState): Rng {
    const rng = new Rng(state.seed, state.path);
    rng.setState(state);
    return rng;
  }

  /** An independent stream for a named consumer; depends on the seed and labels only. */
  fork(label: string): Rng {
    return new Rng(this.seed, [...this.path, label]);
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (rejection of the short last bucket). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new SkdError(`Rng.int needs an integer bound in [1, 2^32], got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** Standard normal by Box-Muller (no cached spare, so the state stays four integers). */
  normal(): number {
    const u = 1 - this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * An index drawn with probability proportional to `weights` (not necessarily normalised).
   * Zero-weight entries are never drawn.
   */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i] as number;
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new SkdError(`categorical weights must be finite and >= 0, got ${w} at index ${i}`);
      }
      total += w;
    }
    if (total <= 0) throw new SkdError(`categorical weights sum to ${total}; at least one must be positive`);
    return cumulativeIndex(weights, this.random() * total);
  }

  /** Fisher-Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A seed for a tfjs random op (tf.randomUniform takes a number seed). */
  tfSeed(): number {
    return this.nextUint32() % 2147483647;
  }

  getState(): RngState {
    return { seed: this.seed, path: [...this.path], s: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    const s = state.s;
    if (s.length !== 4 || s.some((x) => !Number.isInteger(x) || x < 0 || x >= TWO_POW_32)) {
      throw new SkdError(`RNG state must hold four uint32 words, got ${JSON.stringify(s)}`);
    }
    [this.s0, this.s1, this.s2, this.s3] = s;
  }
}

/**
 * The first index at which the running sum of `weights` (in index order) passes `target`, skipping
 * zero weights: a categorical draw when `target` is uniform in [0, sum). When rounding puts `target`
 * at the very top, the last positive entry; -1 when there is none.
 */
export function cumulativeIndex(weights: ArrayLike<number>, target: number): number {
  let acc = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i] as number;
    if (w === 0) continue;
    acc += w;
    last = i;
    if (target < acc) return i;
  }
  return last;
}
