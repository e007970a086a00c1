import * as fs from 'node:fs';
import { ConfigError, FormatError } from '@skd/core';

/** Reads a JSON config file; a missing file or bad JSON is reported with the file name. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${(cause as Error).message}` }], { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new FormatError(file, `not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Applies `key.path=value` overrides (the CLI's `--set`). Values are parsed as JSON when they
 * parse (numbers, booleans, objects), else kept as strings. Numeric segments index arrays.
 */
export function applyOverrides(config: unknown, overrides: readonly string[], source = '--set'): unknown {
  const result = structuredClone(config ?? {}) as Record<string, unknown>;
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(source, [{ path: override, message: `override must look like key.path=value, got "${override}"` }]);
    }
    const keys = override.slice(0, eq).split('.');
    const raw = override.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node: Record<string, unknown> = result;
    keys.slice(0, -1).forEach((key, i) => {
      const next = node[key];
      if (next === undefined) node[key] = /^\d+$/.test(keys[i + 1] as string) ? [] : {};
      else if (next === null || typeof next !== 'object') {
        throw new ConfigError(source, [
          { path: keys.slice(0, i + 1).join('.'), message: `cannot set "${override}": ${keys.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object` },
        ]);
      }
      node = node[key] as Record<string, unknown>;
    });
    node[keys[keys.length - 1] as string] = value;
  }
  return result;
}
