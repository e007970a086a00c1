import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { SkdError, type RunEnded, type RunEvent, type RunStarted, type RunWarning, type StepCompleted } from '@skd/core';
import { LOCK_FILE, LOCK_STALE_MS, readRunEvents, runHistory } from '@skd/trainer';
import { buildCharts, chartScripts, escapeHtml, inlineJson, PAGE_STYLE, type Chart } from './charts';
import { findFoldersWith, loadRun, resultTablesHtml, type RunRecord } from './report';

/**
 * `skd dashboard`: a page on localhost showing every run under a folder while it trains. The page
 * polls `api/state` (the runs, their charts and the table of finished runs, rebuilt only when a
 * run's files changed) and redraws with the same charts as `skd report`.
 */

/** One run folder as the dashboard lists it. */
export interface RunStatus {
  /** The folder relative to the runs folder (the series name in the charts). */
  readonly name: string;
  readonly state: 'training' | 'finished' | 'stopped';
  readonly step: number;
  readonly totalSteps: number | null;
  readonly loss: number | null;
  readonly tokensPerSecond: number | null;
  /** How a finished run ended (completed, early-stopped, ...); the last warning or failure otherwise. */
  readonly note: string | null;
}

export interface DashboardState {
  readonly root: string;
  /** Changes whenever a run's files change: the page redraws only then. */
  readonly version: string;
  readonly runs: readonly RunStatus[];
  readonly charts: readonly Chart[];
  /** The finished runs' results, as `skd report` leads with them: the figure at a glance, then the tables (HTML). */
  readonly table: string;
  /** runs: one line per run; groups: past GROUP_VIEW_RUNS runs, one line per group (its seeds averaged, their range as a band). */
  readonly view: 'runs' | 'groups';
}

/** Past this many runs, the charts show one line per group rather than one per run. */
export const GROUP_VIEW_RUNS = 12;

/** A run's report group: its summary's, else its folder name without the seed ("method-skd__seed-2" → "method-skd"). */
export function runGroup(name: string, record: RunRecord | undefined): string {
  if (record) return record.group;
  const parts = path.basename(name).split('__');
  return parts.filter((p) => !/^seed-\d+$/.test(p)).join('__') || parts.join('__');
}

const RUN_FILES = ['metrics.jsonl', 'summary.json', LOCK_FILE];

/** A stamp of a run's files (size and modification time): equal stamps, equal state. */
function stamp(dir: string): string {
  return RUN_FILES.map((name) => {
    try {
      const stat = fs.statSync(path.join(dir, name));
      return `${stat.size}:${stat.mtimeMs}`;
    } catch {
      return '-';
    }
  }).join(',');
}

interface RunSnapshot {
  readonly stamp: string;
  readonly status: RunStatus;
  readonly events: readonly RunEvent[];
  readonly record: RunRecord | undefined;
}

function snapshot(root: string, dir: string, stamped: string): RunSnapshot {
  const name = path.relative(root, dir) || path.basename(dir);
  let events: readonly RunEvent[] = [];
  let record: RunRecord | undefined;
  let note: string | null = null;
  const noted = (error: unknown) => (note ??= error instanceof SkdError ? error.message : String(error));
  // A finished run is read as the report reads it (its events included); a live one, or one whose
  // summary cannot be read, from its log alone.
  if (fs.existsSync(path.join(dir, 'summary.json'))) {
    try {
      record = loadRun(dir);
      events = record.events;
    } catch (error) {
      noted(error);
    }
  }
  if (!record) {
    try {
      events = runHistory(readRunEvents(path.join(dir, 'metrics.jsonl')));
    } catch (error) {
      noted(error);
    }
  }
  const last = <T extends RunEvent['type']>(type: T) => events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type).at(-1);
  const step: StepCompleted | undefined = last('step');
  const started: RunStarted | undefined = last('run-started');
  const ended: RunEnded | undefined = last('run-ended');
  const warning: RunWarning | undefined = last('warning');
  let lockAge = Number.POSITIVE_INFINITY;
  try {
    lockAge = Date.now() - fs.statSync(path.join(dir, LOCK_FILE)).mtimeMs;
  } catch {
    // no lock: nobody trains it
  }
  return {
    stamp: stamped,
    events,
    record,
    status: {
      name,
      state: record ? 'finished' : lockAge < LOCK_STALE_MS ? 'training' : 'stopped',
      step: step?.step ?? started?.startStep ?? 0,
      totalSteps: step?.totalSteps ?? started?.totalSteps ?? null,
      loss: step?.loss ?? null,
      tokensPerSecond: step?.tokensPerSecond ?? null,
      note: note ?? (ended ? ended.reason + (ended.message ? `: ${ended.message}` : '') : (warning?.message ?? null)),
    },
  };
}

/**
 * The dashboard's view of a runs folder, re-reading only the runs whose files changed since the
 * last call (a folder of hundreds of long runs is polled every few seconds).
 */
export class RunsWatcher {
  private readonly runs = new Map<string, RunSnapshot>();
  private last: DashboardState | undefined;
  private versions = 0;

  constructor(readonly root: string) {}

  state(): DashboardState {
    const dirs = findFoldersWith('metrics.jsonl', [this.root]); // every run that started
    let changed = this.last === undefined || dirs.length !== this.runs.size;
    const seen = new Set(dirs);
    for (const dir of [...this.runs.keys()]) if (!seen.has(dir)) this.runs.delete(dir);
    for (const dir of dirs) {
      const stamped = stamp(dir);
      if (this.runs.get(dir)?.stamp === stamped) continue;
      this.runs.set(dir, snapshot(this.root, dir, stamped));
      changed = true;
    }
    if (!changed && this.last) return this.last;
    const all = dirs.map((dir) => this.runs.get(dir) as RunSnapshot);
    const finished = all.flatMap((run) => (run.record ? [run.record] : []));
    const view = all.length > GROUP_VIEW_RUNS ? 'groups' : 'runs';
    this.last = {
      root: this.root,
      version: String((this.versions += 1)),
      runs: all.map((run) => run.status),
      charts: buildCharts(all.map((run) => ({ series: view === 'groups' ? runGroup(run.status.name, run.record) : run.status.name, events: run.events }))),
      table: finished.length > 0 ? resultTablesHtml(finished) : '',
      view,
    };
    return this.last;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

/**
 * A file under `root` named by a URL path (percent-decoded), or undefined for anything that is not
 * a regular file inside it: `..` segments, absolute paths, and links that lead outside.
 */
export function fileUnder(root: string, urlPath: string): string | undefined {
  let relative: string;
  try {
    relative = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (relative.includes('\0') || relative.split(/[\\/]/).includes('..') || path.isAbsolute(relative)) return undefined;
  const file = path.resolve(root, relative);
  try {
    const real = fs.realpathSync(file);
    const realRoot = fs.realpathSync(root);
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return undefined;
    return fs.statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function page(root: string, refreshMs: number): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>skd dashboard: ${escapeHtml(path.basename(root))}</title>
<style>${PAGE_STYLE}.training{color:#1a7f37}.stopped{color:#9a6700}#updated{color:#777;font-size:12px}</style>
</head><body>
<h1>skd dashboard</h1>
<p>${escapeHtml(root)} <span id="updated"></span></p>
<h2>Runs</h2>
<div id="runs"></div>
<h2>Charts</h2>
<p id="view" class="note"></p>
<div id="charts" class="charts"></div>
<h2>Finished runs</h2>
<div id="table"></div>
${chartScripts()}
<script>
(function () {
  const refreshMs = ${inlineJson(refreshMs)};
  const text = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const fixed = (x, digits) => (x === null || x === undefined ? '-' : x.toFixed(digits));
  let version = null;
  const history = [];
  function showRuns(runs) {
    const rows = runs.map((r) => '<tr><td><a href="files/' + encodeURI(r.name) + '/metrics.jsonl">' + text(r.name) + '</a></td><td class="' + r.state + '">' + r.state + '</td><td>' + r.step + (r.totalSteps ? ' / ' + r.totalSteps : '') + '</td><td>' + fixed(r.loss, 4) + '</td><td>' + fixed(r.tokensPerSecond, 0) + '</td><td>' + text(r.note || '') + '</td></tr>');
    document.getElementById('runs').innerHTML = runs.length ? '<table><thead><tr><th>run</th><th>state</th><th>step</th><th>loss</th><th>tokens/s</th><th>note</th></tr></thead><tbody>' + rows.join('') + '</tbody></table>' : '<p>No runs yet: folders with metrics.jsonl appear here when they start.</p>';
  }
  async function refresh() {
    try {
      const response = await fetch('api/state', { cache: 'no-store' });
      if (!response.ok) throw new Error('api/state: HTTP ' + response.status);
      const state = await response.json();
      if (state.version !== version) {
        version = state.version;
        showRuns(state.runs);
        document.getElementById('view').textContent = state.view === 'groups' ? 'One line per group (' + state.runs.length + ' runs): its runs averaged, their range as a band.' : 'One line per run.';
        skdCharts.render(document.getElementById('charts'), state.charts);
        document.getElementById('table').innerHTML = state.table || '<p>None yet.</p>';
        history.push(state.charts.reduce((n, c) => n + c.rows.length, 0));
        document.body.dataset.pointsHistory = history.join(',');
      }
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (error) {
      document.getElementById('updated').textContent = 'cannot reach skd dashboard (' + error.message + '); retrying';
    }
    setTimeout(refresh, refreshMs);
  }
  refresh();
})();
</script>
</body></html>
`;
}

export interface DashboardOptions {
  readonly root: string;
  readonly port: number;
  readonly host: string;
  readonly refreshSeconds: number;
  /** Called when the served state changed (a run started, stepped, finished): the CLI prints a line. */
  readonly onChange?: (state: DashboardState) => void;
}

export interface Dashboard {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the dashboard until closed: `/` the page, `/api/state` the data, `/files/...` files under the runs folder. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const root = path.resolve(options.root);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new SkdError(`${options.root}: no such folder`, { hint: "point skd dashboard at a folder of runs, e.g. a sweep's out folder or runs/" });
  }
  const watcher = new RunsWatcher(root);
  const html = page(root, Math.round(options.refreshSeconds * 1000));
  let lastVersion: string | undefined;
  const server = http.createServer((request, response) => {
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    const url = (request.url ?? '/').split('?')[0] as string;
    if (url === '/') return send(200, 'text/html; charset=utf-8', html);
    if (url === '/api/state') {
      const state = watcher.state();
      if (state.version !== lastVersion) {
        lastVersion = state.version;
        options.onChange?.(state);
      }
      return send(200, 'application/json', JSON.stringify(state));
    }
    if (url.startsWith('/files/')) {
      const file = fileUnder(root, url.slice('/files/'.length));
      if (file) return send(200, CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', fs.readFileSync(file));
    }
    return send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new SkdError(`port ${options.port} on ${options.host} is in use`, { hint: 'pick another with --port N (--port 0: any free port)' })
          : error,
      ),
    );
    server.listen(options.port, options.host, resolve);
  });
  const address = server.address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
