import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError, SkdError } from '@skd/core';
import { checkConfigPath } from '@skd/config';
import { readJson, writeFileAtomic } from '@skd/models';
import { runExperiment } from './experiment';
import type { Io } from './io';

/**
 * A value of a named axis (a grid key starting with "@"): several config paths set together under
 * one name, e.g. a method as its sampler and divergence.
 */
export const bundleSchema = z.strictObject({
  name: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" or "-"').describe('names the value in run folders and report groups'),
  set: z.record(z.string(), z.unknown()).describe('config path -> value, applied together'),
});

/** A sweep: one base config, a grid of overrides, runs one after another with resumable bookkeeping. */
export const sweepSchema = z
  .strictObject({
    $comment: z.string().optional(),
    base: z.string().min(1).describe('run config, relative to the sweep file'),
    out: z.string().min(1).describe('folder for the runs and the bookkeeping, relative to the sweep file'),
    mode: z.enum(['train', 'distill']).default('distill'),
    grid: z
      .record(z.string(), z.array(z.unknown()).min(1))
      .describe('config path -> values, or "@axis" -> [{ name, set: { path: value } }]; every combination is one run'),
    set: z.array(z.string()).default([]).describe('overrides applied to every run'),
  })
  .superRefine((sweep, ctx) => {
    const pathIssue = (keyPath: string, at: (string | number)[]) => {
      try {
        checkConfigPath(keyPath, 'sweep');
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: at, message: (error as ConfigError).issues[0]?.message ?? String(error) });
      }
    };
    for (const [key, values] of Object.entries(sweep.grid)) {
      if (!key.startsWith('@')) {
        pathIssue(key, ['grid', key]);
        continue;
      }
      values.forEach((value, i) => {
        const set = (value as { set?: unknown } | null)?.set;
        if (set && typeof set === 'object') for (const p of Object.keys(set)) pathIssue(p, ['grid', key, i, 'set', p]);
      });
      values.forEach((value, i) => {
        const parsed = bundleSchema.safeParse(value);
        if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['grid', key, i, ...issue.path], message: issue.message });
      });
    }
  });

interface SweepRun {
  readonly name: string;
  readonly group: string;
  readonly sets: string[];
  status: 'pending' | 'done' | 'failed';
  error?: string;
}

const override = (key: string, value: unknown) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;

/**
 * Every combination of the grid, in a stable order; the group leaves out the seed. A plain key sets
 * one config path per value; an "@axis" key sets each value's paths together, named by its name.
 */
export function expandGrid(grid: Record<string, readonly unknown[]>): { name: string; group: string; sets: string[] }[] {
  let combos: [string, unknown][][] = [[]];
  for (const [key, values] of Object.entries(grid)) combos = combos.flatMap((c) => values.map((v) => [...c, [key, v] as [string, unknown]]));
  // A bundle is named by its name, a component object by its kind ({ "kind": "skd", ... } -> "skd"), anything else by its value.
  const label = (key: string, v: unknown) =>
    key.startsWith('@')
      ? (v as z.infer<typeof bundleSchema>).name
      : typeof v === 'string'
        ? v
        : v && typeof v === 'object' && 'kind' in v
          ? String((v as { kind: unknown }).kind)
          : JSON.stringify(v);
  const slug = (pairs: [string, unknown][]) => pairs.map(([k, v]) => `${k.replace(/^@/, '')}-${label(k, v)}`.replace(/[^\w.-]+/g, '_')).join('__') || 'run';
  // Two grid points with one name would share a folder, and the second would be skipped as done.
  const named = new Map<string, [string, unknown][]>();
  for (const pairs of combos) {
    const other = named.get(slug(pairs));
    if (other) {
      const show = (p: [string, unknown][]) => `{ ${p.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')} }`;
      throw new SkdError(`grid points ${show(other)} and ${show(pairs)} would both be the run "${slug(pairs)}"`, {
        hint: 'give the values names with an "@axis" key ({ "name": ..., "set": { "path": value } }), so each run has its own folder',
      });
    }
    named.set(slug(pairs), pairs);
  }
  return combos.map((pairs) => ({
    name: slug(pairs),
    group: slug(pairs.filter(([k]) => k !== 'seed')),
    sets: pairs.flatMap(([k, v]) => (k.startsWith('@') ? Object.entries((v as z.infer<typeof bundleSchema>).set).map(([p, x]) => override(p, x)) : [override(k, v)])),
  }));
}

/** A sweep file read and checked: its folders resolved, its runs expanded (overrides of `set` first). */
export interface LoadedSweep {
  readonly file: string;
  readonly mode: 'train' | 'distill';
  /** The base run config (absolute). */
  readonly base: string;
  /** The folder the runs go to (absolute). */
  readonly out: string;
  readonly runs: readonly { name: string; group: string; sets: string[] }[];
}

export function loadSweep(sweepFile: string): LoadedSweep {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(sweepFile, 'utf8'));
  } catch (cause) {
    throw new ConfigError(sweepFile, [{ path: '', message: `cannot read the sweep file: ${(cause as Error).message}` }], { cause });
  }
  const parsed = sweepSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(sweepFile, parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const sweep = parsed.data;
  const dir = path.dirname(path.resolve(sweepFile));
  return {
    file: path.resolve(sweepFile),
    mode: sweep.mode,
    base: path.resolve(dir, sweep.base),
    out: path.resolve(dir, sweep.out),
    runs: expandGrid(sweep.grid).map((p) => ({ ...p, sets: [...sweep.set, ...p.sets] })),
  };
}

export async function runSweep(sweepFile: string, io: Io, signal?: AbortSignal): Promise<{ done: number; failed: number; total: number }> {
  const { out, base, mode, runs: planned } = loadSweep(sweepFile);
  const stateFile = path.join(out, 'sweep-state.json');
  fs.mkdirSync(out, { recursive: true });
  const previous: SweepRun[] = fs.existsSync(stateFile) ? ((readJson(stateFile, 'the sweep state') as { runs?: SweepRun[] } | null)?.runs ?? []) : [];
  const runs: SweepRun[] = planned.map((p) => ({ ...p, status: previous.find((r) => r.name === p.name)?.status === 'done' ? 'done' : 'pending' }));
  const save = () => writeFileAtomic(stateFile, `${JSON.stringify({ sweep: path.resolve(sweepFile), runs }, null, 2)}\n`);
  save();
  for (const [i, entry] of runs.entries()) {
    // A run folder with a summary is finished, even if the sweep was killed before recording it.
    if (fs.existsSync(path.join(out, entry.name, 'summary.json'))) entry.status = 'done';
    if (entry.status === 'done') {
      io.out(`sweep ${i + 1}/${runs.length} ${entry.name}: done earlier, skipped`);
      continue;
    }
    if (signal?.aborted) break;
    io.out(`sweep ${i + 1}/${runs.length} ${entry.name}`);
    const runDir = path.join(out, entry.name);
    try {
      const result = await runExperiment({
        configFile: base,
        sets: entry.sets,
        out: runDir,
        resume: fs.existsSync(path.join(runDir, 'config.json')),
        mode,
        io,
        group: entry.group,
        ...(signal ? { signal } : {}),
      });
      if (result.reason !== 'cancelled') {
        entry.status = 'done';
        delete entry.error;
      }
    } catch (error) {
      if (!(error instanceof SkdError)) throw error;
      entry.status = 'failed';
      entry.error = error.message;
      io.err(`sweep run ${entry.name} failed: ${error.message}`);
    }
    save();
  }
  const done = runs.filter((r) => r.status === 'done').length;
  return { done, failed: runs.filter((r) => r.status === 'failed').length, total: runs.length };
}
