import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, FormatError, describeValue } from '@skd/core';

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

/** Path segments that would reach an object's prototype instead of a config field. */
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a dotted config path that is empty in a segment or names `__proto__`, `constructor` or
 * `prototype`: such a path set through an override would change every object in the process.
 */
export function checkConfigPath(keyPath: string, source: string): string[] {
  const keys = keyPath.split('.');
  const bad = keys.find((k) => FORBIDDEN_SEGMENTS.has(k));
  if (bad !== undefined)
    throw new ConfigError(source, [
      { path: keyPath, message: `"${bad}" cannot be part of a config path (it names the prototype of an object, not a setting)` },
    ]);
  if (keys.some((k) => k === '')) throw new ConfigError(source, [{ path: keyPath, message: 'empty segment in the config path' }]);
  return keys;
}

/**
 * Applies `key.path=value` overrides (the CLI's `--set`). Values are parsed as JSON when they
 * parse (numbers, booleans, objects), else kept as strings. Numeric segments index arrays.
 */
export function applyOverrides(config: unknown, overrides: readonly string[], source = '--set'): unknown {
  if (overrides.length > 0 && (config === null || typeof config !== 'object' || Array.isArray(config))) {
    throw new ConfigError(source, [{ path: '', message: `overrides need a config object to set values in, got ${describeValue(config)}` }]);
  }
  const result = structuredClone(config ?? {}) as Record<string, unknown>;
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(source, [{ path: override, message: `override must look like key.path=value, got "${override}"` }]);
    }
    const keys = checkConfigPath(override.slice(0, eq), source);
    const raw = override.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node: Record<string, unknown> = result;
    keys.slice(0, -1).forEach((key, i) => {
      const next = Object.hasOwn(node, key) ? node[key] : undefined;
      if (next === undefined) node[key] = /^\d+$/.test(keys[i + 1] as string) ? [] : {};
      else if (next === null || typeof next !== 'object') {
        throw new ConfigError(source, [
          {
            path: keys.slice(0, i + 1).join('.'),
            message: `cannot set "${override}": ${keys.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object`,
          },
        ]);
      }
      node = node[key] as Record<string, unknown>;
    });
    node[keys[keys.length - 1] as string] = value;
  }
  return result;
}

/**
 * Whether a config value at `keys` is a file path: a component's `path` or `module`, `baseDir`, and
 * each entry under a dataset's `files`.
 */
function isPathKey(keys: readonly string[]): boolean {
  const last = keys[keys.length - 1];
  return last === 'path' || last === 'module' || last === 'baseDir' || keys[keys.length - 2] === 'files';
}

function resolvePaths(value: unknown, keys: readonly string[], fromDir: string): unknown {
  if (typeof value === 'string') {
    if (!isPathKey(keys) || value === '' || path.isAbsolute(value)) return value;
    const resolved = path.resolve(fromDir, value);
    // A module may also be an installed package's name: only what names a file here is a path.
    if (keys[keys.length - 1] === 'module' && !/^\.{1,2}[\\/]/.test(value) && !fs.existsSync(resolved)) return value;
    return resolved;
  }
  if (Array.isArray(value)) return value.map((v, i) => resolvePaths(v, [...keys, String(i)], fromDir));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolvePaths(v, [...keys, k], fromDir)]));
  return value;
}

/**
 * An override (`key.path=value`) with its relative file paths resolved from `fromDir`: the folder
 * of the file it was written in (a sweep file), or the current directory (`--set` on the command
 * line). A config file's own relative paths keep resolving from its folder; an override means what
 * it says where it was typed. Values that are not paths are returned as they were.
 */
export function resolveOverridePaths(override: string, fromDir: string): string {
  const eq = override.indexOf('=');
  if (eq <= 0) return override; // applyOverrides says what is wrong with it
  const keys = override.slice(0, eq).split('.');
  const raw = override.slice(eq + 1);
  let value: unknown;
  let json = true;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
    json = false;
  }
  const resolved = resolvePaths(value, keys, fromDir);
  if (JSON.stringify(resolved) === JSON.stringify(value)) return override;
  return `${override.slice(0, eq)}=${typeof resolved === 'string' && !json ? resolved : JSON.stringify(resolved)}`;
}
