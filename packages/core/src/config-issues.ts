import type { z } from 'zod';
import { describeValue, type ConfigIssue } from './errors';

/**
 * Where else in the config a key exists: full paths (e.g. `training.onTooLong`), given the key and
 * the path where it was found unknown.
 */
export type KeyElsewhere = (key: string, at: string) => readonly string[];

/** zod issues → config issues with dotted paths, quoted bad values and did-you-mean hints. */
export function toConfigIssues(
  error: z.ZodError,
  input: unknown,
  prefix: string,
  knownKeys: (path: readonly PropertyKey[]) => string[],
  elsewhere?: KeyElsewhere,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const base = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(issue.path);
      for (const key of issue.keys) {
        const at = base ? `${base}.${key}` : key;
        // A key that exists elsewhere in the config was put in the wrong place: say where it goes.
        const places = elsewhere?.(key, at) ?? [];
        const suggestion = closest(key, known);
        const knownText = known.length ? `known keys: ${known.join(', ')}` : 'this takes no options';
        issues.push({
          path: at,
          message: places.length
            ? `unknown key; did you mean ${places.join(' or ')}? (${knownText.replace('known keys', 'known keys here')})`
            : `unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; ${knownText}`,
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

/**
 * Every key path of an object schema, depth first: `["training", "training.steps", ...]`, with
 * `prefix` before each and array elements written as `*` (`evaluators.*.kind`). Records (free-form
 * maps) end a path: their keys are not the schema's.
 */
export function schemaKeyPaths(schema: z.ZodType, prefix = ''): string[] {
  const paths: string[] = [];
  const walk = (node: unknown, at: string): void => {
    for (;;) {
      const def = (node as { def?: { type?: string; innerType?: unknown; element?: unknown; in?: unknown } }).def;
      if (def && (def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault')) node = def.innerType;
      else if (def?.type === 'pipe') node = def.in;
      else if (def?.type === 'array') {
        node = def.element;
        at = at ? `${at}.*` : '*';
      } else break;
    }
    const shape = (node as { shape?: Record<string, unknown> }).shape;
    if (!shape) return;
    for (const [key, value] of Object.entries(shape)) {
      const full = at ? `${at}.${key}` : key;
      paths.push(full);
      walk(value, full);
    }
  };
  walk(schema, prefix);
  return paths;
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
