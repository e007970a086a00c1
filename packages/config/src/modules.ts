import * as fs from 'node:fs';
import { Module, createRequire, register } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type AnyComponentEntry, type ComponentKind } from '@skd/core';

/**
 * Lets a user's module anywhere on disk import `@skd/*` (and what skd installs: zod,
 * `@tensorflow/tfjs-core`) from the skd installation that runs it, after its own node_modules: the
 * same package instances as skd's, so `instanceof` and tfjs' registries agree. CommonJS through
 * Node's NODE_PATH fallback (appended once with the folders this package resolves from; the
 * variable itself is restored), ES modules through a resolve hook with the same fallback.
 */
let sharedWithCommonJs = false;
function shareWithCommonJs(): void {
  if (sharedWithCommonJs) return;
  sharedWithCommonJs = true;
  const lookup = module.paths; // the node_modules folders this package resolves its own imports from
  const previous = process.env['NODE_PATH'];
  process.env['NODE_PATH'] = [...(previous ?? '').split(path.delimiter).filter(Boolean), ...lookup].join(path.delimiter);
  (Module as unknown as { _initPaths(): void })._initPaths();
  if (previous === undefined) delete process.env['NODE_PATH'];
  else process.env['NODE_PATH'] = previous;
}

let sharedWithEsModules = false;
function shareWithEsModules(): void {
  if (sharedWithEsModules) return;
  sharedWithEsModules = true;
  const hook = `
    import { createRequire } from 'node:module';
    import { pathToFileURL } from 'node:url';
    const skd = createRequire(${JSON.stringify(__filename)});
    export async function resolve(specifier, context, next) {
      try {
        return await next(specifier, context);
      } catch (error) {
        if (error?.code !== 'ERR_MODULE_NOT_FOUND' || /^[./]/.test(specifier) || specifier.includes(':')) throw error;
        let found;
        try { found = skd.resolve(specifier); } catch { throw error; }
        return { url: pathToFileURL(found).href, shortCircuit: true };
      }
    }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

/** An ES module: `.mjs`, or `.js` under a package.json with `"type": "module"`. */
function isEsModule(file: string): boolean {
  if (file.endsWith('.mjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { type?: unknown }).type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

/** Exports of ES modules imported by `loadConfigModules`, by absolute path. */
const esModules = new Map<string, unknown>();

/**
 * The file a config's `"module"` names: a path (relative to the config's folder, or absolute), or
 * the name of an installed package (`"skd-argmax-warmup"`), found as Node finds packages from the
 * config's folder.
 */
function resolveModule(modulePath: string, baseDir: string): string {
  const asPath = path.resolve(baseDir, modulePath);
  if (/^(\.{1,2}[\\/]|[\\/])/.test(modulePath) || fs.existsSync(asPath)) return asPath;
  try {
    return createRequire(path.join(baseDir, 'config.json')).resolve(modulePath);
  } catch {
    return asPath;
  }
}

/** Every `"module"` path a config names (any object with a `kind` and a `module`). */
function modulePaths(config: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') {
      const ref = value as Record<string, unknown>;
      if (typeof ref['kind'] === 'string' && typeof ref['module'] === 'string') found.push(ref['module']);
      else Object.values(ref).forEach(visit);
    }
  };
  visit(config);
  return found;
}

/**
 * Imports the ES modules a config names (`.mjs`, or `.js` with `"type": "module"`), which can only
 * be loaded asynchronously; `planRun` then finds them loaded. `buildRun` and the CLI call it;
 * a program that calls `planRun` itself on such a config awaits it first. CommonJS modules need nothing.
 */
export async function loadConfigModules(config: unknown, baseDir: string): Promise<void> {
  for (const modulePath of modulePaths(config)) {
    const absolute = resolveModule(modulePath, baseDir);
    if (esModules.has(absolute) || !fs.existsSync(absolute) || !isEsModule(absolute)) continue;
    shareWithEsModules();
    try {
      esModules.set(absolute, await import(pathToFileURL(absolute).href));
    } catch (cause) {
      // planRun reports it with the config path of the slot.
      esModules.set(absolute, new ModuleLoadError(cause));
    }
  }
}

class ModuleLoadError {
  constructor(readonly cause: unknown) {}
}

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
  const absolute = resolveModule(modulePath, baseDir);
  if (!fs.existsSync(absolute)) {
    throw new ConfigError(source, [
      {
        path: where,
        message: `module file "${modulePath}" does not exist (looked for ${absolute}, and for an installed package of that name); paths are relative to the config file's folder`,
      },
    ]);
  }
  let exports: unknown;
  try {
    shareWithCommonJs();
    exports = esModules.get(absolute);
    if (exports instanceof ModuleLoadError) throw exports.cause;
    if (exports === undefined && isEsModule(absolute)) {
      throw new ConfigError(source, [
        {
          path: where,
          message: `module "${modulePath}" is an ES module, which loads asynchronously: validate with await validateRun(config, { baseDir }) (from @skd/config) instead of planRun; buildRun and every skd command do`,
        },
      ]);
    }
    exports ??= require(absolute);
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
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
