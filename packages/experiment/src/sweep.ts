import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError, SkdError } from '@skd/core';
import { checkConfigPath, resolveOverridePaths } from '@skd/config';
import { readJson, writeFileAtomic } from '@skd/models';
import { RunFinishedError, runExperiment } from './experiment';
import { RunDirBusyError, runDirHolder } from '@skd/trainer';
import type { Io } from './io';

const override = (key: string, value: unknown) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;

/** Overrides written either way: `{ "path": value }` or `["path=value", ...]` (as --set takes them). */
const overridesSchema = z.union([z.array(z.string().regex(/^[^=]+=/, 'expected "path=value"')), z.record(z.string(), z.unknown())]);

/** Overrides in --set form, whichever way they were written. */
export function overrideList(set: z.infer<typeof overridesSchema>): string[] {
  return Array.isArray(set) ? set : Object.entries(set).map(([p, x]) => override(p, x));
}

/**
 * A value of a named axis (a grid key starting with "@"): several config paths set together under
 * one name, e.g. a method as its sampler and divergence.
 */
export const bundleSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[\w.-]+$/, 'letters, digits, ".", "_" or "-"')
    .describe('names the value in run folders and report groups'),
  set: overridesSchema.describe('config path -> value (or a list of "path=value"), applied together'),
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
    set: overridesSchema.default([]).transform(overrideList).describe('overrides applied to every run: ["path=value", ...] or { "path": value }'),
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
        if (Array.isArray(set))
          set.forEach((item, j) => typeof item === 'string' && item.includes('=') && pathIssue(item.slice(0, item.indexOf('=')), ['grid', key, i, 'set', j]));
        else if (set && typeof set === 'object') for (const p of Object.keys(set)) pathIssue(p, ['grid', key, i, 'set', p]);
      });
      values.forEach((value, i) => {
        const parsed = bundleSchema.safeParse(value);
        if (!parsed.success)
          for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['grid', key, i, ...issue.path], message: issue.message });
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

/** One grid point: its folder name, its report group, its overrides, and each axis's value label. */
export interface PlannedRun {
  readonly name: string;
  readonly group: string;
  readonly sets: string[];
  /** Axis (the grid key without "@") -> the label of this run's value, as in the run's name. */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Every combination of the grid, in a stable order; the group leaves out the seed. A plain key sets
 * one config path per value; an "@axis" key sets each value's paths together, named by its name.
 */
export function expandGrid(grid: Record<string, readonly unknown[]>): PlannedRun[] {
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
    labels: Object.fromEntries(pairs.map(([k, v]) => [k.replace(/^@/, ''), label(k, v)])),
    sets: pairs.flatMap(([k, v]) => (k.startsWith('@') ? overrideList((v as z.infer<typeof bundleSchema>).set) : [override(k, v)])),
  }));
}

/**
 * Keeps the runs that `--only` filters name: each filter is "axis=value[,value...]" (the axis as in
 * the run names, e.g. method=skd,on-policy or seed=1); a run is kept when every filtered axis has one
 * of the listed values. An unknown axis or value is an error naming the valid ones, so a typo cannot
 * silently select nothing.
 */
export function selectRuns<T extends PlannedRun>(runs: readonly T[], only: readonly string[]): T[] {
  const axes = new Map<string, Set<string>>();
  for (const run of runs) {
    for (const [axis, value] of Object.entries(run.labels)) {
      const values = axes.get(axis) ?? new Set<string>();
      axes.set(axis, values.add(value));
    }
  }
  const wanted = new Map<string, Set<string>>();
  for (const filter of only) {
    const [, name, list] = /^([^=]+)=(.+)$/.exec(filter) ?? [];
    if (name === undefined || list === undefined)
      throw new SkdError(`--only ${filter}: expected axis=value[,value...]`, { hint: `axes of this sweep: ${[...axes.keys()].join(', ')}` });
    const axis = name.replace(/^@/, '');
    const known = axes.get(axis);
    if (!known) throw new SkdError(`--only ${filter}: the sweep has no axis "${axis}"`, { hint: `axes of this sweep: ${[...axes.keys()].join(', ')}` });
    const values = list.split(',').filter((v) => v !== '');
    const unknown = values.filter((v) => !known.has(v));
    if (unknown.length)
      throw new SkdError(`--only ${filter}: axis "${axis}" has no value ${unknown.map((v) => `"${v}"`).join(', ')}`, {
        hint: `its values: ${[...known].join(', ')}`,
      });
    // Two filters on one axis narrow it to the values both list.
    const previous = wanted.get(axis);
    wanted.set(axis, new Set(previous ? values.filter((v) => previous.has(v)) : values));
  }
  return runs.filter((run) => [...wanted].every(([axis, values]) => values.has(run.labels[axis] ?? '')));
}

/** A sweep file read and checked: its folders resolved, its runs expanded (overrides of `set` first). */
export interface LoadedSweep {
  readonly file: string;
  readonly mode: 'train' | 'distill';
  /** The base run config (absolute). */
  readonly base: string;
  /** The folder the runs go to (absolute). */
  readonly out: string;
  /** The runs, in grid order (only those `only` keeps, when given). */
  readonly runs: readonly PlannedRun[];
}

export function loadSweep(sweepFile: string, only: readonly string[] = []): LoadedSweep {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(sweepFile, 'utf8'));
  } catch (cause) {
    throw new ConfigError(sweepFile, [{ path: '', message: `cannot read the sweep file: ${(cause as Error).message}` }], { cause });
  }
  const parsed = sweepSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      sweepFile,
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  const sweep = parsed.data;
  const dir = path.dirname(path.resolve(sweepFile));
  return {
    file: path.resolve(sweepFile),
    mode: sweep.mode,
    base: path.resolve(dir, sweep.base),
    out: path.resolve(dir, sweep.out),
    // The sweep's overrides mean paths from the sweep file's folder, not from the base config's.
    runs: selectRuns(
      expandGrid(sweep.grid).map((p) => ({ ...p, sets: [...sweep.set, ...p.sets].map((s) => resolveOverridePaths(s, dir)) })),
      only,
    ),
  };
}

/** What a sweep process did: runs done (by it or earlier), failed, and left to other processes still running them. */
export interface SweepResult {
  readonly done: number;
  readonly failed: number;
  /** Runs another process held when this one reached them, and had not finished when this one did. */
  readonly elsewhere: number;
  readonly total: number;
}

type SweepState = { runs?: SweepRun[] } | null;

/**
 * Runs a sweep's runs one after another, skipping finished ones. Several processes may run one sweep
 * at once (`experiments/paper-table/run.sh` with JOBS=2 does): each takes the next run that no other
 * holds (its folder's run.lock) and leaves the held ones to their holders, so the processes share the
 * runs between them until the last one ends. The state file merges what each of them recorded.
 */
export async function runSweep(sweepFile: string, io: Io, signal?: AbortSignal, only: readonly string[] = []): Promise<SweepResult> {
  const { out, base, mode, runs: planned } = loadSweep(sweepFile, only);
  const stateFile = path.join(out, 'sweep-state.json');
  fs.mkdirSync(out, { recursive: true });
  const readState = (): SweepRun[] => (fs.existsSync(stateFile) ? ((readJson(stateFile, 'the sweep state') as SweepState)?.runs ?? []) : []);
  const previous = readState();
  const runs: SweepRun[] = planned.map(({ name, group, sets }) => ({
    name,
    group,
    sets,
    status: previous.find((r) => r.name === name)?.status === 'done' ? 'done' : 'pending',
  }));
  const finished = (entry: SweepRun) => fs.existsSync(path.join(out, entry.name, 'summary.json'));
  // Runs this process left to another that held them: their outcome is the other's to record.
  const elsewhere = new Set<string>();
  const save = () => {
    const onDisk = readState();
    for (const entry of runs) {
      if (entry.status !== 'pending') continue;
      const other = onDisk.find((r) => r.name === entry.name);
      if (finished(entry)) entry.status = 'done';
      else if (elsewhere.has(entry.name) && other?.status === 'failed')
        Object.assign(entry, { status: 'failed', ...(other.error ? { error: other.error } : {}) });
    }
    // Runs this process does not plan (left out by --only) keep what other processes recorded of them.
    const others = onDisk.filter((r) => !runs.some((entry) => entry.name === r.name));
    writeFileAtomic(stateFile, `${JSON.stringify({ sweep: path.resolve(sweepFile), runs: [...runs, ...others] }, null, 2)}\n`);
  };
  save();
  for (const [i, entry] of runs.entries()) {
    // A run folder with a summary is finished, even if the sweep was killed before recording it.
    if (finished(entry)) entry.status = 'done';
    if (entry.status === 'done') {
      io.out(`sweep ${i + 1}/${runs.length} ${entry.name}: done earlier, skipped`);
      continue;
    }
    if (signal?.aborted) break;
    const runDir = path.join(out, entry.name);
    const holder = runDirHolder(runDir);
    if (holder) {
      io.out(`sweep ${i + 1}/${runs.length} ${entry.name}: running in ${holder}, skipped`);
      elsewhere.add(entry.name);
      continue;
    }
    io.out(`sweep ${i + 1}/${runs.length} ${entry.name}`);
    try {
      const result = await runExperiment({
        configFile: base,
        sets: entry.sets,
        out: runDir,
        resume: 'if-started',
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
      // Another process took the folder, or ran it to the end, between the look above and the lock.
      if (error instanceof RunDirBusyError) {
        io.out(`sweep ${i + 1}/${runs.length} ${entry.name}: taken by another process, skipped`);
        elsewhere.add(entry.name);
        continue;
      }
      if (error instanceof RunFinishedError) {
        io.out(`sweep ${i + 1}/${runs.length} ${entry.name}: finished by another process`);
        entry.status = 'done';
        save();
        continue;
      }
      entry.status = 'failed';
      entry.error = error.message;
      io.err(`sweep run ${entry.name} failed: ${error.message}`);
    }
    save();
  }
  save();
  const count = (status: SweepRun['status']) => runs.filter((r) => r.status === status).length;
  return {
    done: count('done'),
    failed: count('failed'),
    elsewhere: runs.filter((r) => r.status === 'pending' && elsewhere.has(r.name)).length,
    total: runs.length,
  };
}
