import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { GROUP_VIEW_RUNS, RunsWatcher, fileUnder, runGroup, startDashboard, type Dashboard, type DashboardState } from '@skd/report';
import { chromiumRequired, drawnCharts, renderPage } from './testing/chromium';
import { exited, start, tmp, waitFor } from './testing/cli';

const step = (n: number, acceptance: number) =>
  JSON.stringify({
    type: 'step',
    step: n,
    totalSteps: 40,
    loss: 3 / n,
    learningRate: 1e-3,
    gradNorm: 1,
    tokens: 8,
    tokensPerSecond: 90,
    seconds: 0.1,
    sampler: { acceptanceRate: acceptance },
  });

function liveRun(root: string, name: string, steps: number): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const started = JSON.stringify({ type: 'run-started', runId: name, totalSteps: 40, startStep: 0, backend: 'cpu', time: 0 });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${[started, ...Array.from({ length: steps }, (_, i) => step(i + 1, 0.5))].join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'run.lock'), `${process.pid}\n`); // a fresh lock: someone trains it
  return dir;
}

function finishedRun(root: string, name: string): void {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const events = [
    step(1, 0.4),
    step(2, 0.6),
    JSON.stringify({ type: 'eval', step: 2, split: 'test', metrics: { exactMatch: 0.25, count: 8 }, intervals: { exactMatch: [0.1, 0.4] } }),
  ];
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${events.join('\n')}\n`);
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({
      run: name,
      group: 'method-sup',
      seed: 1,
      divergence: 'forward-kl',
      finalMetrics: { exactMatch: 0.25, count: 8 },
      meanAcceptanceRate: 0.5,
    }),
  );
}

/** A GET with the path sent exactly as written (fetch would resolve `..` before sending). */
function rawGet(url: string, requestPath: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path: requestPath }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('skd dashboard', () => {
  // Every command started here is ended after its test, even when an assertion fails first.
  const launched: ReturnType<typeof start>[] = [];
  const launch = (args: string[], cwd: string) => {
    const child = start(args, cwd);
    launched.push(child);
    return child;
  };
  afterEach(() => launched.splice(0).forEach((child) => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const root = tmp();
  const outside = tmp();
  let dashboard: Dashboard;
  let live: string;
  let grow = false;

  beforeAll(async () => {
    live = liveRun(root, 'sweep/method-skd__seed-1', 3);
    finishedRun(root, 'sweep/method-sup__seed-1');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'not for the dashboard');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'sweep', 'link.txt'));
    dashboard = await startDashboard({
      root,
      port: 0,
      host: '127.0.0.1',
      refreshSeconds: 0.5,
      // The run trains on after the page's first look: five more steps and an evaluation.
      onChange: () => {
        if (grow) {
          grow = false;
          const more = [4, 5, 6, 7, 8].map((n) => step(n, 0.5 + n / 20));
          const evaluation = JSON.stringify({
            type: 'eval',
            step: 8,
            split: 'eval',
            metrics: { exactMatch: 0.125, count: 8 },
            intervals: { exactMatch: [0, 0.375] },
          });
          fs.appendFileSync(path.join(live, 'metrics.jsonl'), `${[...more, evaluation].join('\n')}\n`);
        }
      },
    });
  });
  afterAll(() => dashboard.close());

  it('lists every run with its state, and serves only files under the runs folder', async () => {
    expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const state = (await (await fetch(`${dashboard.url}api/state`)).json()) as DashboardState;
    expect(state.runs.map((r) => [r.name, r.state, r.step])).toEqual([
      ['sweep/method-skd__seed-1', 'training', expect.any(Number)],
      ['sweep/method-sup__seed-1', 'finished', 2],
    ]);
    expect(state.table).toContain('<td>method-sup</td>');
    expect((await fetch(`${dashboard.url}files/sweep/method-sup__seed-1/summary.json`)).status).toBe(200);
    for (const attempt of [
      '/files/../' + path.basename(outside) + '/secret.txt',
      '/files/%2e%2e/%2e%2e/etc/passwd',
      '/files/sweep/..%2f..%2fetc/passwd',
      '/files//etc/passwd',
      '/files/sweep/link.txt',
      '/files/sweep',
      '/files/nothing',
      '/elsewhere',
    ]) {
      expect([attempt, await rawGet(dashboard.url, attempt)]).toEqual([attempt, 404]);
    }
    expect(fileUnder(root, 'sweep/method-sup__seed-1/summary.json')).toBe(fs.realpathSync(path.join(root, 'sweep/method-sup__seed-1/summary.json')));
  });

  it('draws the runs in Chromium, and a run that appends metrics makes its chart grow', async () => {
    if (!chromiumRequired()) return;
    // A run that starts now: the page's first look is a change, on which the run trains on.
    live = liveRun(root, 'sweep/method-skd__seed-2', 3);
    grow = true;
    // Virtual time lets the page poll several times; each poll's fetch completes in real time.
    const page = await renderPage(dashboard.url, { virtualTimeMs: 6000, screenshot: path.join(root, 'dashboard.png') });
    expect(page.errors).toEqual([]);
    const history = (/data-points-history="([\d,]+)"/.exec(page.dom)?.[1] ?? '').split(',').map(Number);
    expect(history.length).toBeGreaterThanOrEqual(2);
    expect(history.at(-1)).toBeGreaterThan(history[0] as number);
    const charts = drawnCharts(page.dom);
    expect(charts.get('loss')?.points).toBe(3 + 8 + 2); // the first run's three steps, the live run's eight, the finished run's two
    expect(charts.get('eval-exactMatch')?.marks).toEqual(expect.arrayContaining(['dot', 'rule']));
    expect(page.dom).toContain(`data-rendered="${charts.size}"`);
    expect(page.dom).toMatch(/class="training">training</);
    expect(fs.statSync(path.join(root, 'dashboard.png')).size).toBeGreaterThan(10_000);
  }, 180_000);

  it('runs as a command: binds to 127.0.0.1, prints its address, refuses a missing folder', async () => {
    const child = launch(['dashboard', root, '--port', '0'], root);
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\//.test(child.output()), 30_000);
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(child.output())?.[0] as string;
    const page = await (await fetch(url)).text();
    expect(page).toContain('skd dashboard');
    expect(page).toContain('const refreshMs = 2000;'); // --refresh 2 by default
    child.kill('SIGINT');
    await exited(child);
    // --host and --refresh are used, and exposing the folder is warned about.
    const open = launch(['dashboard', root, '--port', '0', '--host', '0.0.0.0', '--refresh', '0.25'], root);
    await waitFor(() => /http:\/\/0\.0\.0\.0:\d+\//.test(open.output()), 30_000);
    const port = /http:\/\/0\.0\.0\.0:(\d+)\//.exec(open.output())?.[1] as string;
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toContain('const refreshMs = 250;');
    expect(open.output()).toContain('warning: --host 0.0.0.0: every file under');
    open.kill('SIGINT');
    await exited(open);
    const missing = launch(['dashboard', path.join(root, 'nowhere')], root);
    expect(await exited(missing)).toBe(2);
    expect(missing.output()).toMatch(/error: .*nowhere: no such folder/);
  }, 60_000);
});

describe('the dashboard of a large sweep', () => {
  it("draws one line per group, its runs' range as a band, past GROUP_VIEW_RUNS runs; finished runs at a glance", () => {
    const root = tmp();
    // Two methods x 7 seeds: 14 runs, 12 finished and 2 still training.
    for (const method of ['skd', 'sup']) {
      for (let seed = 1; seed <= 7; seed++) {
        if (seed === 7) liveRun(root, `method-${method}__seed-${seed}`, 2);
        else finishedRun(root, `method-${method}__seed-${seed}`);
      }
    }
    const state = new RunsWatcher(root).state();
    expect(state.runs).toHaveLength(14);
    expect(14).toBeGreaterThan(GROUP_VIEW_RUNS);
    expect(state.view).toBe('groups');
    const loss = state.charts.find((c) => c.id === 'loss');
    // finishedRun names every finished run's group method-sup; the live ones are named by folder.
    expect([...new Set(loss?.rows.map((r) => r.series))].sort()).toEqual(['method-skd', 'method-sup']);
    const stepOne = loss?.rows.find((r) => r.series === 'method-sup' && r.step === 1);
    expect(stepOne).toMatchObject({ value: 3, low: 3, high: 3 });
    expect(state.table).toContain('<svg xmlns="http://www.w3.org/2000/svg" class="glance"');
    expect(runGroup('sweep/method-skd__data-1k__seed-3', undefined)).toBe('method-skd__data-1k');
    // A small folder keeps one line per run.
    const small = tmp();
    finishedRun(small, 'a');
    expect(new RunsWatcher(small).state().view).toBe('runs');
  });
});
