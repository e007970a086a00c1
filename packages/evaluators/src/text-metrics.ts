/**
 * Corpus metrics computed as the standard tools define them, so numbers are comparable with papers:
 * BLEU and chrF as sacreBLEU (2.x) computes them with its defaults, ROUGE-L as rouge-score does.
 */

const ENTITIES: [RegExp, string][] = [
  [/&quot;/g, '"'],
  [/&amp;/g, '&'],
  [/&lt;/g, '<'],
  [/&gt;/g, '>'],
];

/** sacreBLEU's default "13a" tokenizer (mteval-v13a): split punctuation and symbols off words. */
export function tokenize13a(line: string): string[] {
  let text = line
    .replace(/<skipped>/g, '')
    .replace(/-\n/g, '')
    .replace(/\n/g, ' ');
  if (text.includes('&')) for (const [entity, char] of ENTITIES) text = text.replace(entity, char);
  text = ` ${text} `;
  text = text.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  text = text.replace(/([^0-9])([.,])/g, '$1 $2 ');
  text = text.replace(/([.,])([^0-9])/g, ' $1 $2');
  text = text.replace(/([0-9])(-)/g, '$1 $2 ');
  return text.split(/\s+/).filter(Boolean);
}

function ngramCounts(items: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= items.length; i++) {
    const key = items.slice(i, i + n).join('\u0001');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export interface BleuResult {
  readonly score: number;
  readonly precisions: readonly number[];
  readonly brevityPenalty: number;
  readonly hypothesisLength: number;
  readonly referenceLength: number;
}

const BLEU_ORDER = 4;

/**
 * One sentence's BLEU statistics, which corpus BLEU sums over sentences: hypothesis length,
 * reference length, then matched and total n-grams for n = 1..4 (sacreBLEU's sufficient statistics).
 */
export function bleuStatistics(hypothesis: string, reference: string): number[] {
  const h = tokenize13a(hypothesis);
  const r = tokenize13a(reference);
  const stats = [h.length, r.length];
  for (let n = 1; n <= BLEU_ORDER; n++) {
    const hc = ngramCounts(h, n);
    const rc = ngramCounts(r, n);
    let correct = 0;
    for (const [gram, count] of hc) correct += Math.min(count, rc.get(gram) ?? 0);
    stats.push(correct, Math.max(0, h.length - n + 1));
  }
  return stats;
}

/** Corpus BLEU from summed `bleuStatistics`: 4-grams, brevity penalty, sacreBLEU's "exp" smoothing. */
export function bleuFromStatistics(sums: readonly number[]): BleuResult {
  const [sysLen = 0, refLen = 0] = sums;
  const precisions = new Array(BLEU_ORDER).fill(0);
  let smooth = 1;
  for (let n = 0; n < BLEU_ORDER; n++) {
    const correct = sums[2 + 2 * n] ?? 0;
    const total = sums[3 + 2 * n] ?? 0;
    if (total === 0) break;
    if (correct === 0) {
      smooth *= 2;
      precisions[n] = 100 / (smooth * total);
    } else precisions[n] = (100 * correct) / total;
  }
  const brevityPenalty = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const logSum = precisions.reduce((s, p) => s + (p > 0 ? Math.log(p) : -9999999999), 0);
  const score = brevityPenalty * Math.exp(logSum / BLEU_ORDER);
  return { score, precisions, brevityPenalty, hypothesisLength: sysLen, referenceLength: refLen };
}

/** Element-wise sum of equal-length rows (`width` columns when there are none). */
export function sumRows(rows: readonly (readonly number[])[], width: number): number[] {
  const sums = new Array<number>(width).fill(0);
  for (const row of rows) row.forEach((v, i) => (sums[i] = (sums[i] as number) + v));
  return sums;
}

function checkPairs(hypotheses: readonly string[], references: readonly string[]): void {
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} references`);
}

/** Corpus BLEU (one reference per hypothesis), 4-grams, brevity penalty, sacreBLEU's "exp" smoothing. */
export function corpusBleu(hypotheses: readonly string[], references: readonly string[]): BleuResult {
  checkPairs(hypotheses, references);
  return bleuFromStatistics(
    sumRows(
      hypotheses.map((h, i) => bleuStatistics(h, references[i] as string)),
      2 + 2 * BLEU_ORDER,
    ),
  );
}

/** What Python's str.split() splits on (sacreBLEU's whitespace): JavaScript's \\s less U+FEFF, plus U+001C-U+001F and U+0085. */
// eslint-disable-next-line no-control-regex -- U+001C-U+001F are whitespace to Python, so they must be here
const PY_WHITESPACE = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

function pyWords(text: string): string[] {
  return text.split(PY_WHITESPACE).filter(Boolean);
}

/** sacreBLEU's punctuation for chrF++'s words (string.punctuation). */
const PUNCTUATION = new Set(Array.from('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'));

/** chrF++'s words: whitespace-split, one punctuation mark split off each word's end, else its start. */
export function chrfWords(text: string): string[] {
  return pyWords(text).flatMap((w) => {
    const chars = Array.from(w);
    if (chars.length === 1) return [w];
    const last = chars[chars.length - 1] as string;
    if (PUNCTUATION.has(last)) return [chars.slice(0, -1).join(''), last];
    const first = chars[0] as string;
    if (PUNCTUATION.has(first)) return [first, chars.slice(1).join('')];
    return [w];
  });
}

/** [hypothesis, reference, matched] n-gram counts; a hypothesis's n-grams count only where the reference has some of that order (as sacreBLEU counts). */
function matchStatistics(hc: Map<string, number>, rc: Map<string, number>): [number, number, number] {
  let hyp = 0;
  let ref = 0;
  let match = 0;
  for (const c of rc.values()) ref += c;
  for (const [gram, c] of hc) {
    hyp += c;
    match += Math.min(c, rc.get(gram) ?? 0);
  }
  return [rc.size > 0 ? hyp : 0, ref, match];
}

export interface ChrfOptions {
  /** Character n-gram orders (sacreBLEU: 6). */
  readonly charOrder?: number;
  /** Word n-gram orders: 0 for chrF, 2 for chrF++. */
  readonly wordOrder?: number;
  readonly beta?: number;
}

/**
 * One sentence's chrF statistics, which corpus chrF sums: for n = 1..charOrder character n-grams
 * (whitespace removed), then n = 1..wordOrder word n-grams, the hypothesis, reference and matched counts.
 */
export function chrfStatistics(hypothesis: string, reference: string, options: ChrfOptions = {}): number[] {
  const { charOrder = 6, wordOrder = 0 } = options;
  const hChars = Array.from(pyWords(hypothesis).join(''));
  const rChars = Array.from(pyWords(reference).join(''));
  const stats: number[] = [];
  for (let n = 1; n <= charOrder; n++) stats.push(...matchStatistics(ngramCounts(hChars, n), ngramCounts(rChars, n)));
  if (wordOrder > 0) {
    const hWords = chrfWords(hypothesis);
    const rWords = chrfWords(reference);
    for (let n = 1; n <= wordOrder; n++) stats.push(...matchStatistics(ngramCounts(hWords, n), ngramCounts(rWords, n)));
  }
  return stats;
}

/** Corpus chrF from summed `chrfStatistics`: precision and recall averaged over the orders both sides have, then F-beta (beta 2). */
export function chrfFromStatistics(sums: readonly number[], beta = 2): number {
  let effective = 0;
  let precision = 0;
  let recall = 0;
  for (let i = 0; i + 2 < sums.length; i += 3) {
    const [hyp = 0, ref = 0, match = 0] = sums.slice(i, i + 3);
    if (hyp > 0 && ref > 0) {
      precision += match / hyp;
      recall += match / ref;
      effective += 1;
    }
  }
  if (effective === 0) return 0;
  precision /= effective;
  recall /= effective;
  const factor = beta * beta;
  return precision + recall > 0 ? (100 * (1 + factor) * precision * recall) / (factor * precision + recall) : 0;
}

/** Corpus chrF (chrF++ with wordOrder 2) as sacreBLEU 2 computes it with its defaults. */
export function corpusChrf(hypotheses: readonly string[], references: readonly string[], options: ChrfOptions = {}): number {
  checkPairs(hypotheses, references);
  const { charOrder = 6, wordOrder = 0, beta = 2 } = options;
  return chrfFromStatistics(
    sumRows(
      hypotheses.map((h, i) => chrfStatistics(h, references[i] as string, { charOrder, wordOrder })),
      3 * (charOrder + wordOrder),
    ),
    beta,
  );
}

/**
 * rouge-score's tokenizer: lowercase, every run of characters outside [a-z0-9] becomes a space. It
 * drops non-Latin scripts entirely; `unicode` keeps letters and digits of every script instead.
 */
export function rougeTokens(text: string, mode: 'rouge-score' | 'unicode' = 'rouge-score'): string[] {
  const lower = text.toLowerCase();
  const spaced = mode === 'rouge-score' ? lower.replace(/[^a-z0-9]+/g, ' ') : lower.replace(/[^\p{L}\p{M}\p{N}]+/gu, ' ');
  return spaced.split(/\s+/).filter(Boolean);
}

function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const row = new Array(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) row[j] = a[i - 1] === b[j - 1] ? (prev[j - 1] as number) + 1 : Math.max(prev[j] as number, row[j - 1] as number);
    prev = row;
  }
  return prev[b.length] as number;
}

/** ROUGE-L F-measure of one prediction against one reference (rouge-score's definition). */
export function rougeL(prediction: string, reference: string, mode: 'rouge-score' | 'unicode' = 'rouge-score'): number {
  const p = rougeTokens(prediction, mode);
  const r = rougeTokens(reference, mode);
  if (p.length === 0 || r.length === 0) return 0;
  const lcs = lcsLength(p, r);
  const precision = lcs / p.length;
  const recall = lcs / r.length;
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}
