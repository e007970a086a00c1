import { FormatError } from '@skd/core';

export interface BpeModelOptions {
  /** Characters outside the vocabulary become their UTF-8 bytes as `<0xXX>` tokens (SentencePiece style). */
  readonly byteFallback: boolean;
  /** The unknown token, for symbols without an id (and without byte fallback). */
  readonly unk: string | undefined;
  /** Consecutive unknown symbols become one unknown token. */
  readonly fuseUnk: boolean;
  /** A pre-token that is itself in the vocabulary is taken whole, without merges (Llama 3). */
  readonly ignoreMerges: boolean;
}

interface Candidate {
  readonly rank: number;
  readonly pos: number;
  readonly left: string;
  readonly right: string;
}

/**
 * Byte-pair encoding of one pre-token: start from its characters, repeatedly merge the adjacent pair
 * of lowest rank (the leftmost among equals), then map symbols to ids. A binary heap keeps this
 * O(n log n) in the pre-token's length, which matters for SentencePiece-style tokenizers whose
 * pre-tokens are whole sentences.
 */
export class BpeModel {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly unkId: number | undefined;

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    merges: readonly (readonly [string, string])[],
    private readonly options: BpeModelOptions,
    source: string,
  ) {
    merges.forEach(([a, b], rank) => {
      const key = pairKey(a, b);
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    if (options.unk !== undefined) {
      this.unkId = vocab.get(options.unk);
      if (this.unkId === undefined) throw new FormatError(source, `model.unk_token ${JSON.stringify(options.unk)} is not in the vocabulary`);
    }
  }

  tokenize(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const ids = this.encode(piece);
    if (this.cache.size < 200_000) this.cache.set(piece, ids);
    return ids;
  }

  private encode(piece: string): number[] {
    if (this.options.ignoreMerges) {
      const whole = this.vocab.get(piece);
      if (whole !== undefined) return [whole];
    }
    const sym = Array.from(piece);
    const n = sym.length;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const alive = new Uint8Array(n).fill(1);
    const heap: Candidate[] = [];
    const consider = (pos: number) => {
      const right = next[pos] as number;
      if (pos < 0 || right < 0) return;
      const rank = this.ranks.get(pairKey(sym[pos] as string, sym[right] as string));
      if (rank !== undefined) push(heap, { rank, pos, left: sym[pos] as string, right: sym[right] as string });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.length) {
      const top = pop(heap);
      const right = next[top.pos] as number;
      // Stale: one side was merged away since this pair was seen.
      if (!alive[top.pos] || right < 0 || sym[top.pos] !== top.left || sym[right] !== top.right) continue;
      sym[top.pos] = top.left + top.right;
      alive[right] = 0;
      const after = next[right] as number;
      next[top.pos] = after;
      if (after >= 0) prev[after] = top.pos;
      consider(prev[top.pos] as number);
      consider(top.pos);
    }
    const ids: number[] = [];
    let lastUnknown = false;
    for (let i = 0; i >= 0 && i < n; i = next[i] as number) {
      const symbol = sym[i] as string;
      const id = this.vocab.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        lastUnknown = false;
        continue;
      }
      if (this.options.byteFallback) {
        const bytes = Array.from(new TextEncoder().encode(symbol), (b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (bytes.every((b) => b !== undefined)) {
          ids.push(...(bytes as number[]));
          lastUnknown = false;
          continue;
        }
      }
      if (this.unkId === undefined) throw new FormatError('tokenizer', `symbol ${JSON.stringify(symbol)} has no id and the model has no unk_token`);
      if (!(this.options.fuseUnk && lastUnknown)) ids.push(this.unkId);
      lastUnknown = true;
    }
    return ids;
  }
}

function pairKey(a: string, b: string): string {
  return `${a}\u0000${b}`;
}

function less(a: Candidate, b: Candidate): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.pos < b.pos);
}

function push(heap: Candidate[], item: Candidate): void {
  heap.push(item);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(heap[i] as Candidate, heap[parent] as Candidate)) break;
    [heap[i], heap[parent]] = [heap[parent] as Candidate, heap[i] as Candidate];
    i = parent;
  }
}

function pop(heap: Candidate[]): Candidate {
  const top = heap[0] as Candidate;
  const last = heap.pop() as Candidate;
  if (heap.length) {
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l] as Candidate, heap[m] as Candidate)) m = l;
      if (r < heap.length && less(heap[r] as Candidate, heap[m] as Candidate)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m] as Candidate, heap[i] as Candidate];
      i = m;
    }
  }
  return top;
}
