import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, type AnyComponentEntry, type ComponentKind } from '@skd/core';

function isEntry(value: unknown): value is AnyComponentEntry {
  if (value === null || typeof value !== 'object') return false;
  const entry = value as Partial<AnyComponentEntry>;
  return (
    typeof entry.kind === 'string' &&
    typeof entry.component === 'string' &&
    typeof entry.create === 'function' &&
    typeof (entry.options as { safeParse?: unknown } | undefined)?.safeParse === 'function'
  );
}

/** Entries a module exports: `default`, `component`, `components` (array), or the module itself. */
function exportedEntries(exports: unknown): AnyComponentEntry[] {
  const found: AnyComponentEntry[] = [];
  const visit = (value: unknown) => {
    if (isEntry(value)) found.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
  };
  visit(exports);
  if (exports && typeof exports === 'object') {
    const named = exports as Record<string, unknown>;
    visit(named['default']);
    visit(named['component']);
    visit(named['components']);
  }
  return [...new Set(found)];
}

/**
 * Loads a user's component entry from a module path in a config, so a researcher extends skd
 * without forking it. The path is relative to the config file's folder.
 */
export function loadComponentModule<K extends ComponentKind>(
  component: K,
  kind: string,
  modulePath: string,
  baseDir: string,
  configPath: string,
  source: string,
): AnyComponentEntry<K> {
  const where = `${configPath}.module`;
  const absolute = path.resolve(baseDir, modulePath);
  if (!fs.existsSync(absolute)) {
    throw new ConfigError(source, [
      { path: where, message: `module file "${modulePath}" does not exist (looked for ${absolute}); paths are relative to the config file's folder` },
    ]);
  }
  let exports: unknown;
  try {
    exports = require(absolute);
  } catch (cause) {
    throw new ConfigError(source, [{ path: where, message: `cannot load module "${modulePath}": ${(cause as Error).message}` }], { cause });
  }
  const entries = exportedEntries(exports);
  const match = entries.find((entry) => entry.component === component && entry.kind === kind);
  if (!match) {
    const offered = entries.map((entry) => `${entry.component} "${entry.kind}"`).join(', ') || 'no component entries';
    throw new ConfigError(source, [
      {
        path: where,
        message: `module "${modulePath}" exports ${offered}, not the ${component} "${kind}" the config asks for; export defineComponent({ component: "${component}", kind: "${kind}", ... })`,
      },
    ]);
  }
  return match as AnyComponentEntry<K>;
}
