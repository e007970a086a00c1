import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromiumRequired, drawnCharts, renderPage } from './testing/chromium';
import { skd, tmp } from './testing/cli';

// The committed paper table (192 runs: 4 tasks x 8 methods x 2 data sizes x 3 seeds), reported as a
// reader of the paper would want it: each task's methods at a glance first, then the tables.
const ARCHIVES = path.resolve(__dirname, '../../../experiments/paper-table/results');
const TASKS = ['arithmetic', 'instructions', 'translation', 'summarization'];
const METHODS = 8;
const SIZES = 2;

describe('skd report on the paper table', () => {
  const dir = tmp();
  beforeAll(() => {
    for (const task of TASKS) {
      fs.mkdirSync(path.join(dir, task), { recursive: true });
      for (const archive of fs.readdirSync(path.join(ARCHIVES, task))) {
        const untar = spawnSync('tar', ['-xzf', path.join(ARCHIVES, task, archive), '-C', path.join(dir, task)]);
        if (untar.status !== 0) throw new Error(`cannot unpack ${archive}: ${untar.stderr}`);
      }
    }
  });

  it("leads with each task's results at a glance and the headline table, the rest folded; writes the figures as SVG and PNG", async () => {
    const result = skd(['report', ...TASKS, '--paired', 'method=skd', '--format', 'svg,png', '--out', 'report'], dir);
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.status).toBe(0);
    const html = fs.readFileSync(path.join(dir, 'report/report.html'), 'utf8');
    const figures = html.split('<svg xmlns="http://www.w3.org/2000/svg" class="glance"').slice(1);
    expect(figures).toHaveLength(TASKS.length);
    // One mark and one interval per method and data size in every task; SKD marked at both sizes.
    for (const figure of figures) {
      expect(figure.match(/<circle class="mark"/g)).toHaveLength(METHODS * SIZES);
      expect(figure.match(/<line class="interval"/g)).toHaveLength(METHODS * SIZES);
      expect(figure.match(/data-marked="true"/g)).toHaveLength(SIZES);
      // The teacher and each size's starting student (skd eval --out runs) as reference lines.
      expect(figure.match(/<g class="reference"/g)).toHaveLength(1 + SIZES);
    }
    expect(figures.map((f) => /data-metric="([^"]+)"/.exec(f)?.[1])).toEqual(['exactMatch', 'passRate', 'chrf', 'rougeL']);
    // The figure and the headline table come before anything folded away.
    const firstFolded = html.indexOf('<details');
    expect(html.indexOf('class="glance"')).toBeLessThan(firstFolded);
    expect(html.indexOf('Δ skd')).toBeLessThan(firstFolded);
    expect(html).toContain('<summary>Paired tests of every metric</summary>');
    const markdown = fs.readFileSync(path.join(dir, 'report/report.md'), 'utf8');
    expect(markdown.split('## arithmetic')[1]?.trimStart()).toMatch(/^exactMatch on the test split/);
    for (const task of TASKS) {
      expect(fs.readFileSync(path.join(dir, `report/figures/${task}-glance.svg`), 'utf8')).toMatch(/^<\?xml[^]*<svg[^]*<\/svg>\n$/);
      if (chromiumRequired()) expect(fs.statSync(path.join(dir, `report/figures/${task}-glance.png`)).size).toBeGreaterThan(20_000);
    }
    if (!chromiumRequired()) return;
    const screenshot = path.join(dir, 'report/report.png');
    const page = await renderPage(`file://${path.join(dir, 'report/report.html')}`, { screenshot });
    expect(page.errors).toEqual([]);
    expect(page.dom.match(/<svg xmlns="http:\/\/www.w3.org\/2000\/svg" class="glance"/g)).toHaveLength(TASKS.length);
    const charts = drawnCharts(page.dom);
    expect(page.dom).toContain(`data-rendered="${charts.size}"`);
    expect(fs.statSync(screenshot).size).toBeGreaterThan(50_000);
  }, 300_000);

  it('--metric picks the headline metric, and names the ones there are when no run has it', () => {
    const bleu = skd(['report', 'translation', '--metric', 'bleu', '--out', 'report-bleu'], dir);
    expect(bleu.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'report-bleu/report.html'), 'utf8')).toContain('data-metric="bleu"');
    const bad = skd(['report', 'translation', '--metric', 'bleurt', '--out', 'report-bad'], dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--metric bleurt: no run reports it[^]*chrf, bleu/);
  });
});
