/**
 * Hugging Face tokenizers compile their Split patterns with Oniguruma; a few of its constructs mean
 * something else (or nothing) in a JavaScript RegExp. This rewrites a pattern into an equivalent
 * JavaScript one (flag `u`):
 * - `\s` and `\S` are Unicode White_Space in Oniguruma: U+0085 is space there and U+FEFF is not,
 *   the reverse of JavaScript's `\s`; both are spelled out.
 * - `(?i:...)` (case-insensitive group; JavaScript has no inline modifiers before Node 23) becomes a
 *   group whose letters are classes of both cases.
 */
const SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

export function onigurumaToJs(pattern: string): RegExp {
  let out = '';
  let inClass = false;
  const caseless: boolean[] = []; // per open group: whether it is (?i:
  let i = 0;
  const foldCase = () => caseless.some(Boolean);
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (next === 's') out += inClass ? SPACE : `[${SPACE}]`;
      else if (next === 'S') {
        if (inClass) throw new SyntaxError(`\\S inside a character class is not supported: ${pattern}`);
        out += `[^${SPACE}]`;
      } else if (next === 'p' || next === 'P' || next === 'x' || next === 'u') {
        // \p{..}, \x.., \u....: copied whole (the braces belong to the escape).
        const end = pattern[i + 2] === '{' ? pattern.indexOf('}', i) + 1 : i + 2;
        out += pattern.slice(i, end);
        i = end;
        continue;
      } else out += c + next;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += foldCase() && /\p{L}/u.test(c) ? both(c) : c;
      i += 1;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') {
        out += '^';
        i += 1;
      }
      i += 1;
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?i:', i)) {
        caseless.push(true);
        out += '(?:';
        i += 4;
        continue;
      }
      caseless.push(false);
      out += c;
      i += 1;
      continue;
    }
    if (c === ')') {
      caseless.pop();
      out += c;
      i += 1;
      continue;
    }
    out += foldCase() && /\p{L}/u.test(c) ? `[${both(c)}]` : c;
    i += 1;
  }
  return new RegExp(out, 'gu');
}

function both(c: string): string {
  const lower = c.toLowerCase();
  const upper = c.toUpperCase();
  return lower === upper ? c : `${lower}${upper}`;
}
