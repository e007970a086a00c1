import type { z } from 'zod';
import { describeValue, type ConfigIssue } from './errors';

/** zod issues → config issues with dotted paths, quoted bad values and did-you-mean hints. */
export function toConfigIssues(error: z.ZodError, input: unknown, prefix: string, knownKeys: (path: readonly PropertyKey[]) => string[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const base = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(issue.path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        issues.push({
          path: base ? `${base}.${key}` : key,
          message: `unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; ${known.length ? `known keys: ${known.join(', ')}` : 'this takes no options'}`,
        });
      }
      continue;
    }
    const value = valueAt(input, issue.path);
    const got = value === undefined ? 'missing' : `got ${describeValue(value)}`;
    issues.push({ path: base, message: `${issue.message} (${got})` });
  }
  return issues;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** The known key nearest to `key` within edit distance 2, if any. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** Keys of the object schema found by following `path` through objects, arrays, defaults and optionals. */
export function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema;
  const unwrap = () => {
    for (;;) {
      const def = (current as { def?: { type?: string; innerType?: unknown; element?: unknown } }).def;
      if (def && (def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault')) {
        current = def.innerType;
      } else return;
    }
  };
  unwrap();
  for (const key of path) {
    const def = (current as { def?: { type?: string; element?: unknown } }).def;
    if (def?.type === 'array') current = def.element;
    else {
      const shape = (current as { shape?: Record<string, unknown> }).shape;
      if (!shape || !(String(key) in shape)) return [];
      current = shape[String(key)];
    }
    unwrap();
  }
  const shape = (current as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}
