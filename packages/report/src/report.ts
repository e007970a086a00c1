import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, SkdError, type RunEvent } from '@skd/core';
import { readRunEvents, runHistory } from '@skd/trainer';
import { averageScores, intervals, pairedBootstrap, type BootstrapScores } from '@skd/evaluators';
import { readJson, writeFileAtomic } from '@skd/models';
import { buildCharts, chartScripts, escapeHtml, inlineJson, PAGE_STYLE, type Chart } from './charts';
import { ablationLayouts, ablationSvg } from './ablation';
import { glanceLayout, glanceSvg, headlineCandidates, headlineMetric, pointOf } from './glance';
import { BASELINE_GROUP, groupAxes } from './groups';

export { BASELINE_GROUP, groupAxes } from './groups';

/** A finished run as the report reads it. */
export interface RunRecord {
  readonly dir: string;
  readonly group: string;
  readonly seed: number;
  readonly divergence: string | undefined;
  readonly finalMetrics: Record<string, number>;
  readonly meanAcceptanceRate: number | null;
  readonly events: RunEvent[];
  /** The final test's bootstrap scores, when the run's folder has them (a report reads folders without them, minus intervals and tests). */
  readonly bootstrap: BootstrapScores | undefined;
  /** "eval" for a checkpoint scored by `skd eval --out` (a starting student, a teacher), else how it trained. */
  readonly mode: string | undefined;
}

/**
 * Folders holding `marker` under the given paths, up to three levels deep, in name order; a folder
 * with the marker is not searched further, and one removed while we look is passed over.
 */
export function findFoldersWith(marker: string, paths: readonly string[]): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // not a folder, or gone
    }
    if (entries.some((e) => e.name === marker && e.isFile())) {
      found.push(dir);
      return;
    }
    if (depth >= 3) return;
    for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) visit(path.join(dir, entry.name), depth + 1);
  };
  paths.forEach((p) => visit(path.resolve(p), 0));
  return found;
}

/** Run folders (holding summary.json) under the given paths, up to three levels deep. */
export function findRuns(paths: readonly string[]): string[] {
  return findFoldersWith('summary.json', paths);
}

/** A section's folder as the report read it: its title, and how many trained runs and evaluations it holds. */
export function describeSections(sections: readonly ReportSection[]): string {
  return sections
    .map((s) => {
      const evals = s.runDirs.filter(isEvaluationFolder).length;
      return `${s.title} (${s.runDirs.length - evals} trained runs, ${evals} evaluations)`;
    })
    .join(', ');
}

/** An `skd eval --out` folder (summary mode "eval"), as against a trained run. */
function isEvaluationFolder(dir: string): boolean {
  const summary = readJson(path.join(dir, 'summary.json'), 'a run summary') as { mode?: string } | null;
  return summary?.mode === 'eval';
}

/** The digest of the test examples a run folder's final bootstrap scores were computed on, if it has them. */
function scoredExamplesOf(dir: string): string | undefined {
  try {
    return loadRun(dir).bootstrap?.examples;
  } catch {
    return undefined;
  }
}

/**
 * Sections that hold only evaluations (`skd eval --out` folders given beside a sweep's folder: the
 * starting student, the teacher) join every section of trained runs scored on the same test
 * examples, as rows of its table with paired tests against them; with no bootstrap scores to
 * compare, they join the only section of trained runs. An evaluation that fits no section is an
 * error that says how to join it, not a section of its own that --baseline would then fail on.
 */
export function joinEvaluations(sections: readonly ReportSection[]): ReportSection[] {
  // Each folder read once, however many evaluations are matched against it.
  const memo = <T>(read: (dir: string) => T) => {
    const seen = new Map<string, T>();
    return (dir: string): T => {
      if (!seen.has(dir)) seen.set(dir, read(dir));
      return seen.get(dir) as T;
    };
  };
  const isEvaluation = memo(isEvaluationFolder);
  const scoredExamples = memo(scoredExamplesOf);
  const evalOnly = (s: ReportSection) => s.runDirs.length > 0 && s.runDirs.every(isEvaluation);
  const trained = sections.filter((s) => !evalOnly(s));
  if (trained.length === 0) return [...sections];
  const joined = new Map(trained.map((s) => [s, [...s.runDirs]]));
  for (const section of sections.filter(evalOnly)) {
    for (const dir of section.runDirs) {
      const examples = scoredExamples(dir);
      const targets = trained.filter((t) =>
        examples === undefined ? trained.length === 1 : t.runDirs.some((run) => !isEvaluation(run) && scoredExamples(run) === examples),
      );
      if (targets.length === 0) {
        throw new SkdError(
          `${dir}: an evaluation (skd eval --out) that no section's trained runs match: ${examples === undefined ? 'it has no bootstrap scores to compare, and there are several sections' : 'they were scored on other test examples'}; sections read: ${describeSections(trained)}`,
          {
            hint: "evaluate it with a config of those runs (skd eval <a run's config.json> --set student=... --out <that sweep's out>/<name>), so it is scored on their test examples and sits in their folder",
          },
        );
      }
      for (const target of targets) joined.get(target)?.push(dir);
    }
  }
  return trained.map((s) => ({ title: s.title, runDirs: joined.get(s) ?? s.runDirs }));
}

/** What `prepareBaselines` asks to evaluate: a run config with the student replaced, into `out`. */
export interface BaselineEvaluation {
  readonly configFile: string;
  readonly sets: readonly string[];
  readonly out: string;
  readonly group: string;
}

/**
 * The run folders of `skd report --baseline`: a finished run or eval folder as it is; a model
 * checkpoint evaluated with the config of the section's first run (its student replaced), so it is
 * scored on the same test examples (the evaluation subset is seeded from the split, not the run).
 * Evaluations go to `<reportDir>/baselines/<section>/<name>` and are reused when the report is
 * written again.
 */
export async function prepareBaselines(
  baselines: readonly string[],
  section: { readonly title: string; readonly runDirs: readonly string[] },
  reportDir: string,
  evaluate: (evaluation: BaselineEvaluation) => Promise<unknown>,
): Promise<string[]> {
  const dirs: string[] = [];
  for (const baseline of baselines) {
    const dir = path.resolve(baseline);
    if (fs.existsSync(path.join(dir, 'summary.json'))) {
      dirs.push(dir);
      continue;
    }
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      throw new SkdError(`--baseline ${baseline}: neither a finished run or eval folder (summary.json) nor a model folder (config.json)`, {
        hint: 'pass a checkpoint such as experiments/arithmetic/models/student-1k, a Hugging Face model folder, or a folder written by skd eval --out',
      });
    }
    const reference = section.runDirs.find((run) => fs.existsSync(path.join(run, 'config.json')) && !isEvaluationFolder(run));
    if (!reference) {
      throw new SkdError(
        `--baseline ${baseline}: section ${section.title} has no trained run whose config says which test examples to use (sections read: ${describeSections([section])})`,
        { hint: "report a sweep's or run's folder beside it: evaluations join the section of trained runs scored on the same test examples" },
      );
    }
    const model = baselineModel(baseline, dir);
    const name = `${path.basename(path.dirname(dir))}-${path.basename(dir)}`.replace(/[^\w.-]+/g, '_');
    const out = path.resolve(reportDir, 'baselines', section.title.replace(/[^\w.-]+/g, '_'), name);
    if (!fs.existsSync(path.join(out, 'summary.json'))) {
      fs.rmSync(out, { recursive: true, force: true }); // an interrupted evaluation leaves nothing usable
      await evaluate({
        configFile: path.join(reference, 'config.json'),
        sets: [`student=${JSON.stringify(model)}`],
        out,
        group: `${BASELINE_GROUP}${path.basename(dir)}`,
      });
    }
    dirs.push(out);
  }
  return dirs;
}

/**
 * The model config of a baseline folder, by what its config.json says it is: an skd checkpoint
 * (`format: "skd-checkpoint"`) or a Hugging Face model folder (`model_type`), read with the runs'
 * tokenizer (the model kinds refuse one whose own tokenizer reads ids differently).
 */
function baselineModel(baseline: string, dir: string): { kind: string; options: { path: string } } {
  const config = readJson(path.join(dir, 'config.json'), 'a model config') as { format?: unknown; model_type?: unknown; architectures?: unknown } | null;
  if (config?.format === 'skd-checkpoint') return { kind: 'checkpoint', options: { path: dir } };
  if (typeof config?.model_type === 'string' || Array.isArray(config?.architectures)) return { kind: 'hf', options: { path: dir } };
  throw new SkdError(`--baseline ${baseline}: config.json is neither an skd checkpoint's (format "skd-checkpoint") nor a Hugging Face model's (model_type)`, {
    hint: "pass a checkpoint written by skd (a run's model/ folder), a Hugging Face model folder, or a folder written by skd eval --out",
  });
}

/** One finished run folder: its summary, events and (when written) final bootstrap scores. */
export function loadRun(dir: string): RunRecord {
  const summaryFile = path.join(dir, 'summary.json');
  const summary = readJson(summaryFile, 'a run summary') as {
    group?: string;
    run: string;
    seed: number;
    divergence?: string;
    finalMetrics: Record<string, number>;
    meanAcceptanceRate: number | null;
    bootstrap?: string;
    mode?: string;
  };
  if (
    summary === null ||
    typeof summary !== 'object' ||
    typeof summary.finalMetrics !== 'object' ||
    summary.finalMetrics === null ||
    typeof summary.seed !== 'number'
  ) {
    throw new FormatError(summaryFile, 'not a run summary (finalMetrics, seed)');
  }
  const bootstrapFile = summary.bootstrap ? path.join(dir, summary.bootstrap) : undefined;
  const bootstrap = bootstrapFile && fs.existsSync(bootstrapFile) ? (readJson(bootstrapFile, 'bootstrap scores') as BootstrapScores) : undefined;
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const events = fs.existsSync(metricsFile) ? runHistory(readRunEvents(metricsFile)) : [];
  return {
    dir,
    group: summary.group ?? summary.run,
    seed: summary.seed,
    divergence: summary.divergence,
    finalMetrics: summary.finalMetrics,
    meanAcceptanceRate: summary.meanAcceptanceRate,
    events,
    bootstrap,
    mode: summary.mode,
  };
}

export function meanStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, std };
}

/** The runs under one heading of a report (e.g. one task's sweep), with their own table and charts. */
export interface ReportSection {
  readonly title: string;
  readonly runDirs: readonly string[];
}

const PHASES = 4;

/**
 * Each run's mean SKD acceptance rate in each quarter of its training steps, then mean and std over
 * the group's seeds: the curriculum the method claims (acceptance rising as the student improves).
 */
function acceptanceByPhase(members: readonly RunRecord[]): number[][] | undefined {
  const perRun = members.flatMap((run) => {
    const points = run.events.flatMap((e) =>
      e.type === 'step' && e.sampler['acceptanceRate'] !== undefined ? [[e.step, e.sampler['acceptanceRate']] as const] : [],
    );
    if (points.length < PHASES) return [];
    const last = Math.max(...points.map(([step]) => step));
    const phases = Array.from({ length: PHASES }, (_, k) =>
      points.filter(([step]) => Math.min(PHASES - 1, Math.floor(((step - 1) * PHASES) / last)) === k).map(([, v]) => v),
    );
    return phases.every((p) => p.length > 0) ? [phases.map((p) => p.reduce((a, b) => a + b, 0) / p.length)] : [];
  });
  return perRun.length > 0 ? Array.from({ length: PHASES }, (_, k) => perRun.map((r) => r[k] as number)) : undefined;
}

/** Mean ± std over seeds; a single seed has no spread to show, so it prints the value alone. */
const cell = (values: readonly number[]) => {
  if (values.length === 0) return '-';
  const { mean, std } = meanStd(values);
  return values.length === 1 ? mean.toFixed(3) : `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
};

/** Which system a report compares every other one with: the groups whose `axis` part is `value`. */
export interface PairedSpec {
  readonly axis: string;
  readonly value: string;
}

/** `method=skd` → { axis: 'method', value: 'skd' }. */
export function parsePairedSpec(text: string): PairedSpec {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1)
    throw new SkdError(`--paired ${text}: expected axis=value`, { hint: 'e.g. --paired method=skd (groups are named like method-skd__data-1k)' });
  return { axis: text.slice(0, at), value: text.slice(at + 1) };
}

/** A group's runs as one system: bootstrap scores averaged over its seeds, when every run has comparable ones. */
export function groupScores(members: readonly RunRecord[]): BootstrapScores | undefined {
  const all = members.map((r) => r.bootstrap);
  if (all.length === 0 || all.some((b) => b === undefined)) return undefined;
  try {
    return averageScores(all as BootstrapScores[]);
  } catch {
    return undefined; // evaluated on different examples: no joint interval
  }
}

export interface PairedComparison {
  readonly system: string;
  readonly baseline: string;
  readonly metric: string;
  readonly delta: number;
  readonly interval: [number, number];
  readonly p: number;
}

/**
 * Paired bootstrap tests of each group whose `spec.axis` part is `spec.value` against every group
 * that differs from it in that part only (same data size, same everything else), and against every
 * `--baseline` model, seeds averaged.
 */
export function pairedComparisons(runs: readonly RunRecord[], spec: PairedSpec): PairedComparison[] {
  const groups = [...new Set(runs.map((r) => r.group))];
  const key = (group: string) => JSON.stringify(groupAxes(group).filter(([axis]) => axis !== spec.axis));
  const out: PairedComparison[] = [];
  for (const system of groups.filter((g) => groupAxes(g).some(([axis, value]) => axis === spec.axis && value === spec.value))) {
    const mine = groupScores(runs.filter((r) => r.group === system));
    if (!mine) continue;
    // Same everything but the compared axis; and every --baseline model (the starting student, the teacher).
    const against = (g: string) =>
      g !== system && ((key(g) === key(system) && groupAxes(g).some(([axis]) => axis === spec.axis)) || g.startsWith(BASELINE_GROUP));
    for (const baseline of groups.filter(against)) {
      const theirs = groupScores(runs.filter((r) => r.group === baseline));
      if (!theirs || theirs.examples !== mine.examples) continue;
      for (const [metric, result] of Object.entries(pairedBootstrap(mine, theirs))) out.push({ system, baseline, metric, ...result });
    }
  }
  return out;
}

interface Table {
  readonly caption: string | undefined;
  readonly header: string[];
  readonly rows: string[][];
}

const fixed3 = (x: number) => x.toFixed(3);
const range = ([low, high]: readonly [number, number]) => `[${fixed3(low)}, ${fixed3(high)}]`;

/** A section's tables: the headline first, the rest for readers who open them. */
interface SectionTables {
  /** The headline metric with its interval and the compared method's paired differences. */
  readonly headline: Table | undefined;
  /** Every final metric (per-type breakdowns included) as mean ± std over seeds, and with intervals. */
  readonly metrics: readonly Table[];
  /** Every metric of every paired test. */
  readonly paired: Table | undefined;
  readonly acceptance: Table | undefined;
}

/** The headline table: one row per group, the metric with its interval, and Δ of the compared method against it (same setting, p). */
function headlineTable(result: SectionResult, metric: string, paired: PairedSpec | undefined): Table {
  const tests = result.paired.filter((c) => c.metric === metric);
  const withTests = paired !== undefined && tests.length > 0;
  // A --baseline row is compared with the method in every setting: one entry each, named by the setting.
  const setting = (system: string) =>
    groupAxes(system)
      .filter(([axis]) => axis !== paired?.axis)
      .map(([a, v]) => `${a}-${v}`)
      .join('__');
  const deltaCells = (group: string): string[] => {
    const mine = tests.filter((c) => c.baseline === group);
    if (mine.length === 0) return ['', '', ''];
    const named = (text: (c: PairedComparison) => string) => mine.map((c) => (mine.length > 1 ? `${text(c)} (${setting(c.system)})` : text(c))).join('; ');
    return [named((c) => fixed3(c.delta)), named((c) => range(c.interval)), named((c) => c.p.toFixed(3))];
  };
  return {
    caption: `${metric} on the test split: the value with its 95% bootstrap interval (seeds averaged), or mean ± std over seeds where runs have no bootstrap scores${withTests ? `; Δ = ${paired.axis} ${paired.value} − the row, paired over the same test examples` : ''}:`,
    header: ['group', 'seeds', metric, ...(withTests ? [`Δ ${paired.value}`, '95% interval of Δ', 'p'] : [])],
    rows: result.groups.flatMap((g) => {
      const point = pointOf(g, metric);
      if (!point) return [];
      const shown = point.kind === 'bootstrap' && point.interval ? `${fixed3(point.value)} ${range(point.interval)}` : cell(g.metrics[metric]?.values ?? []);
      return [[g.group, String(g.seeds), shown, ...(withTests ? deltaCells(g.group) : [])]];
    }),
  };
}

/** The tables of a section, rendered from its results (computed once, also what --json prints). */
function sectionTables(runs: readonly RunRecord[], result: SectionResult, paired: PairedSpec | undefined, metric?: string): SectionTables {
  const groups = result.groups.map((g) => g.group);
  const metricNames = [...new Set(result.groups.flatMap((g) => Object.keys(g.metrics)))].filter((m) => m !== 'count').sort();
  const headline = headlineMetric(result, metric);
  // validationLoss is each run's own divergence on the references, so the table says which one it is.
  const metrics: Table[] = [
    {
      caption:
        "Final test metrics, mean ± std over seeds (acceptance: SKD's mean acceptance rate over training; s/step: each run's mean seconds per training step, as measured where it ran):",
      header: ['group', 'seeds', 'divergence', ...metricNames, 'acceptance', 's/step'],
      rows: result.groups.map((g) => [
        g.group,
        String(g.seeds),
        g.divergences.join(', '),
        ...metricNames.map((m) => cell(g.metrics[m]?.values ?? [])),
        cell(g.acceptance?.values ?? []),
        cell(g.secondsPerStep?.values ?? []),
      ]),
    },
  ];
  const scored = result.groups.flatMap((g) => (g.bootstrap ? [{ group: g.group, ...g.bootstrap }] : []));
  if (scored.length > 0) {
    const names = [...new Set(scored.flatMap((g) => Object.keys(g.intervals)))].sort();
    metrics.push({
      caption: 'Task metrics with 95% bootstrap intervals (the test examples resampled; seeds averaged within each resample):',
      header: ['group', 'examples', ...names],
      rows: scored.map(({ group, examples, values, intervals: ranges }) => [
        group,
        String(examples),
        ...names.map((m) => (ranges[m] ? `${fixed3(values[m] as number)} ${range(ranges[m])}` : '-')),
      ]),
    });
  }
  const pairedTable: Table | undefined =
    paired && result.paired.length > 0
      ? {
          caption: `Paired bootstrap tests of ${paired.axis} ${paired.value} against each other ${paired.axis} with everything else equal (Δ = ${paired.value} − baseline; two-sided p, whose floor is 1/(resamples + 1)):`,
          header: ['system', 'baseline', 'metric', 'Δ', '95% interval of Δ', 'p'],
          rows: result.paired.map((c) => [c.system, c.baseline, c.metric, fixed3(c.delta), range(c.interval), c.p.toFixed(3)]),
        }
      : undefined;
  const phaseRows = groups.flatMap((group) => {
    const phases = acceptanceByPhase(runs.filter((r) => r.group === group));
    return phases ? [[group, ...phases.map(cell)]] : [];
  });
  return {
    headline: headline !== undefined ? headlineTable(result, headline, paired) : undefined,
    metrics,
    paired: pairedTable,
    acceptance:
      phaseRows.length > 0
        ? {
            caption: 'Acceptance rate over training (mean over each quarter of the steps, then mean ± std over seeds):',
            header: ['group', 'steps 0-25%', '25-50%', '50-75%', '75-100%'],
            rows: phaseRows,
          }
        : undefined,
  };
}

/** A section's tables in reading order. */
const allTables = (t: SectionTables): Table[] => [
  ...(t.headline ? [t.headline] : []),
  ...t.metrics,
  ...(t.paired ? [t.paired] : []),
  ...(t.acceptance ? [t.acceptance] : []),
];

function markdownTables(tables: readonly Table[]): string[] {
  return tables.flatMap(({ caption, header, rows }) => [
    ...(caption ? [caption, ''] : []),
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ]);
}

function sectionCharts(runs: readonly RunRecord[], prefix: string): Chart[] {
  return buildCharts(
    runs.map((run) => ({ series: run.group, events: run.events })),
    prefix,
  );
}

/**
 * `skd report`: per section (one per path given), the results table (mean and std over seeds per
 * group) and SKD's acceptance rate per quarter of training, as Markdown; and a self-contained HTML
 * page whose charts (loss, evaluation metrics and acceptance rate against step) are drawn by
 * Observable Plot, inlined with the data so the file opens offline. `command` is printed at the top, so a committed report says how
 * it was made.
 */
/** Per-seed values of one quantity with their mean and standard deviation. */
export interface SeedStatistic {
  readonly mean: number;
  readonly std: number;
  readonly values: readonly number[];
}

/** One group of a report as data (what `skd report --json` prints and report.json holds). */
export interface GroupResult {
  readonly group: string;
  readonly seeds: number;
  readonly divergences: readonly string[];
  /** Final test metrics over the group's runs. */
  readonly metrics: Readonly<Record<string, SeedStatistic>>;
  /** SKD's mean acceptance rate over training; null for methods without one. */
  readonly acceptance: SeedStatistic | null;
  /** Each run's mean seconds per training step (absent for evaluations, which train nothing). */
  readonly secondsPerStep?: SeedStatistic;
  /** Every run of the group is an evaluation of a checkpoint (`skd eval --out`): a reference, not a method. */
  readonly evaluation?: boolean;
  /** Seeds averaged per test example, with 95% bootstrap intervals; absent when runs lack scores or differ in examples. */
  readonly bootstrap?: {
    readonly examples: number;
    readonly values: Readonly<Record<string, number>>;
    readonly intervals: Readonly<Record<string, readonly [number, number]>>;
  };
}

export interface SectionResult {
  readonly title: string;
  readonly groups: readonly GroupResult[];
  readonly paired: readonly PairedComparison[];
}

const seedStatistic = (values: readonly number[]): SeedStatistic | null => (values.length ? { ...meanStd(values), values } : null);

/** A section's results as plain data: the numbers behind its tables. */
export function sectionResult(title: string, runs: readonly RunRecord[], paired: PairedSpec | undefined): SectionResult {
  const groups = [...new Set(runs.map((r) => r.group))].map((group): GroupResult => {
    const members = runs.filter((r) => r.group === group);
    const metricNames = [...new Set(members.flatMap((r) => Object.keys(r.finalMetrics)))].sort();
    const metrics = Object.fromEntries(
      metricNames.flatMap((m) => {
        const stat = seedStatistic(members.flatMap((r) => (r.finalMetrics[m] !== undefined ? [r.finalMetrics[m] as number] : [])));
        return stat ? [[m, stat]] : [];
      }),
    );
    const scores = groupScores(members);
    const stepSeconds = seedStatistic(
      members.flatMap((r) => {
        const steps = r.events.flatMap((e) => (e.type === 'step' ? [e.seconds] : []));
        return steps.length ? [steps.reduce((a, b) => a + b, 0) / steps.length] : [];
      }),
    );
    return {
      group,
      seeds: members.length,
      divergences: [...new Set(members.map((r) => r.divergence ?? '?'))],
      metrics,
      acceptance: seedStatistic(members.flatMap((r) => (r.meanAcceptanceRate !== null ? [r.meanAcceptanceRate] : []))),
      ...(stepSeconds ? { secondsPerStep: stepSeconds } : {}),
      ...(members.every((r) => r.mode === 'eval') ? { evaluation: true } : {}),
      ...(scores ? { bootstrap: { examples: scores.count, values: scores.values, intervals: intervals(scores) } } : {}),
    };
  });
  return { title, groups, paired: paired ? pairedComparisons(runs, paired) : [] };
}

/** The at-a-glance figure of one section, as written to report.html and by `skd report --format`. */
export interface GlanceFigure {
  /** The file name the figure is written under (without extension); default `<title>-glance`. */
  readonly name?: string;
  readonly title: string;
  readonly metric: string;
  readonly svg: string;
  readonly width: number;
  readonly height: number;
}

export interface ReportOptions {
  readonly command?: string;
  readonly paired?: PairedSpec;
  /** The headline metric (default: the task's own, e.g. passRate, exactMatch, chrf, rougeL). */
  readonly metric?: string;
  readonly onSkip?: (dir: string, error: SkdError) => void;
}

export function writeReport(
  sections: readonly ReportSection[],
  outDir: string,
  options: ReportOptions = {},
): {
  markdown: string;
  html: string;
  groups: number;
  runs: number;
  skipped: readonly string[];
  sections: readonly SectionResult[];
  figures: readonly GlanceFigure[];
} {
  // One broken run (a torn summary, a garbled metrics line) is named and left out, not fatal to the report.
  const skipped: string[] = [];
  const readable = (dir: string): RunRecord[] => {
    try {
      return [loadRun(dir)];
    } catch (error) {
      if (!(error instanceof SkdError)) throw error;
      skipped.push(`${dir}: ${error.message}`);
      options.onSkip?.(dir, error);
      return [];
    }
  };
  const loaded = sections.map((s) => ({ title: s.title, runs: s.runDirs.flatMap(readable) })).filter((s) => s.runs.length > 0);
  if (loaded.length === 0)
    throw new SkdError('no finished runs found (folders with summary.json)', { hint: 'point skd report at run folders or a sweep folder' });
  const total = loaded.reduce((n, s) => n + s.runs.length, 0);
  const groups = loaded.reduce((n, s) => n + new Set(s.runs.map((r) => r.group)).size, 0);
  const titled = loaded.length > 1;
  const results = loaded.map((s) => sectionResult(s.title, s.runs, options.paired));
  if (options.metric !== undefined && !results.some((r) => headlineCandidates(r).includes(options.metric as string))) {
    const known = [...new Set(results.flatMap(headlineCandidates))];
    throw new SkdError(`--metric ${options.metric}: no run reports it`, { hint: `the runs report ${known.join(', ') || 'no headline metric'}` });
  }
  const parts = loaded.map((s, i) => {
    const result = results[i] as SectionResult;
    const layout = glanceLayout(result, { ...(options.metric ? { metric: options.metric } : {}), ...(options.paired ? { highlight: options.paired } : {}) });
    const figure = layout ? { title: s.title, metric: layout.metric, ...glanceSvg(layout, `${s.title}: test ${layout.metric}`) } : undefined;
    const ablations = ablationLayouts(result, headlineMetric(result, options.metric)).map((a): GlanceFigure => {
      const about = `${a.axis}${a.setting ? ` (${a.setting})` : ''}`;
      return {
        name: `${s.title}-ablation-${about}`.replace(/[^\w.-]+/g, '_'),
        title: s.title,
        metric: a.metric,
        ...ablationSvg(a, `${s.title}: ${a.metric}, acceptance and cost against ${about}`),
      };
    });
    return {
      ...s,
      figure,
      ablations,
      tables: sectionTables(s.runs, result, options.paired, options.metric),
      charts: sectionCharts(s.runs, titled ? `${s.title}: ` : ''),
    };
  });
  const markdown = [
    '# skd results',
    '',
    ...(options.command ? [`Produced by \`${options.command}\`.`, ''] : []),
    ...(skipped.length ? [`Left out (unreadable): ${skipped.length} run(s):`, '', ...skipped.map((s) => `- ${s}`), ''] : []),
    `Runs: ${total} in ${groups} group(s); mean ± std over seeds of the final test metrics; acceptance is SKD's mean acceptance rate over training.`,
    '',
    ...parts.flatMap((p) => [...(titled ? [`## ${p.title}`, ''] : []), ...markdownTables(allTables(p.tables))]),
    "Figures and charts: report.html (each task's results at a glance; ablations: the metric, acceptance and seconds per step against a numeric sweep value; loss, evaluation metrics and acceptance rate against step).",
    '',
  ].join('\n');
  const html = renderHtml(
    parts.map((p) => ({ title: titled ? p.title : undefined, tables: p.tables, figure: p.figure, ablations: p.ablations })),
    parts.flatMap((p) => p.charts),
    options.command,
  );
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'report.md'), markdown);
  writeFileAtomic(path.join(outDir, 'report.html'), html);
  writeFileAtomic(path.join(outDir, 'report.json'), `${JSON.stringify({ runs: total, groups, skipped, sections: results }, null, 2)}\n`);
  const figures = parts.flatMap((p) => [...(p.figure ? [p.figure] : []), ...p.ablations]);
  return { markdown, html, groups, runs: total, skipped, sections: results, figures };
}

const htmlTable = ({ caption, header, rows }: Table) =>
  `${caption ? `<p>${escapeHtml(caption)}</p>` : ''}<div class="scroll"><table><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;

const details = (summary: string, body: string, open = false) =>
  body ? `<details${open ? ' open' : ''}><summary>${escapeHtml(summary)}</summary>${body}</details>` : '';

/** A section as the page leads with it: the figure at a glance and the headline table, then every other table folded. */
function sectionHtml(tables: SectionTables, figureSvg: string | undefined): string {
  return [
    figureSvg ? `<figure class="glance">${figureSvg}</figure>` : '',
    tables.headline ? htmlTable(tables.headline) : '',
    details('All metrics, per-type breakdowns, intervals', tables.metrics.map(htmlTable).join('\n')),
    details('Paired tests of every metric', tables.paired ? htmlTable(tables.paired) : ''),
    details('Acceptance over training', tables.acceptance ? htmlTable(tables.acceptance) : ''),
  ].join('\n');
}

/** The finished runs as the report leads with them: what the dashboard shows for finished runs. */
export function resultTablesHtml(runs: readonly RunRecord[]): string {
  const result = sectionResult('', runs, undefined);
  const layout = glanceLayout(result);
  return sectionHtml(sectionTables(runs, result, undefined), layout ? glanceSvg(layout, `finished runs: test ${layout.metric}`).svg : undefined);
}

function renderHtml(
  sections: readonly { title: string | undefined; tables: SectionTables; figure: GlanceFigure | undefined; ablations: readonly GlanceFigure[] }[],
  charts: readonly Chart[],
  command: string | undefined,
): string {
  const body = sections
    .map(({ title, tables, figure, ablations }) =>
      [
        title ? `<h2>${escapeHtml(title)}</h2>` : '',
        sectionHtml(tables, figure?.svg),
        ablations.length
          ? details(
              'Ablations: the metric, acceptance and seconds per step against each numeric sweep value',
              ablations.map((a) => `<figure class="ablation">${a.svg}</figure>`).join('\n'),
              true,
            )
          : '',
      ]
        .filter(Boolean)
        .join('\n'),
    )
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>skd report</title>
<style>${PAGE_STYLE}</style>
</head><body>
<h1>skd results</h1>
${command ? `<p class="note">Produced by <code>${escapeHtml(command)}</code>.</p>` : ''}
${body}
<details open><summary>Charts over training</summary>
<p>Loss and acceptance: raw per step (faint) and smoothed; evaluation metrics with their 95% bootstrap intervals (the mean of the seeds' bounds). One line per group, its seeds averaged.</p>
<div id="charts" class="charts"></div>
</details>
${chartScripts()}
<script>skdCharts.render(document.getElementById('charts'), ${inlineJson(charts)});</script>
</body></html>
`;
}
