/** Headless Chromium for the page tests (not part of the package). */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((c) => fs.existsSync(c));

/** CI installs Chromium (tools/setup.sh), so a page must render there; elsewhere the page tests may skip. */
export const chromiumRequired = () => CHROMIUM !== undefined || process.env['CI'] !== undefined;

export interface RenderedPage {
  /** The DOM after the page's scripts ran (and, with virtualTimeMs, its timers and fetches). */
  readonly dom: string;
  /** Console messages and uncaught exceptions the page reported (skd's pages log none when all is well). */
  readonly errors: readonly string[];
}

/**
 * Loads `url` in headless Chromium and returns its DOM; with `screenshot`, also writes a PNG of the
 * page there. `virtualTimeMs` lets the page's timers run that long (fetches complete in real time
 * meanwhile), so a page that polls a server is seen after several updates.
 */
export async function renderPage(url: string, options: { screenshot?: string; virtualTimeMs?: number } = {}): Promise<RenderedPage> {
  if (!CHROMIUM) throw new Error('no Chromium at /usr/bin/chromium (run bash tools/setup.sh)');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-chromium-'));
  const common = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--hide-scrollbars',
  ];
  const run = (args: string[]) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(
        CHROMIUM,
        [
          ...common,
          `--user-data-dir=${profile}`,
          '--enable-logging=stderr',
          '--v=0',
          ...(options.virtualTimeMs ? [`--virtual-time-budget=${options.virtualTimeMs}`] : []),
          ...args,
          url,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('error', reject);
      child.on('exit', () => {
        clearTimeout(timer);
        resolve({ stdout, stderr });
      });
    });
  try {
    const { stdout, stderr } = await run(['--dump-dom']);
    if (options.screenshot) await run([`--screenshot=${options.screenshot}`, '--window-size=1400,2400']);
    // Chromium logs the page's console as `...:CONSOLE:line] "text", source: url (line)`, without its
    // level; skd's pages log nothing when all is well, so every console line counts.
    const errors = stderr.split('\n').filter((line) => /:CONSOLE[:(]|Uncaught/.test(line));
    return { dom: stdout, errors };
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** The charts drawn on a page (assets/charts.js): per chart id, its data points and the Plot marks drawn. */
export function drawnCharts(dom: string): Map<string, { points: number; marks: string[]; error?: string }> {
  const charts = new Map<string, { points: number; marks: string[]; error?: string }>();
  for (const part of dom.split('<figure class="chart"').slice(1)) {
    const id = /data-chart="([^"]+)"/.exec(part)?.[1] as string;
    const error = /data-error="([^"]*)"/.exec(part.slice(0, part.indexOf('>')))?.[1];
    const marks = [...part.matchAll(/aria-label="(line|dot|area|rule)"/g)].map((m) => m[1] as string);
    charts.set(id, { points: Number(/data-points="(\d+)"/.exec(part)?.[1]), marks, ...(error ? { error } : {}) });
  }
  return charts;
}
