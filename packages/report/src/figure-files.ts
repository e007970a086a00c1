import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SkdError } from '@skd/core';
import { writeFileAtomic } from '@skd/models';
import type { GlanceFigure } from './report';

/** What `skd report --format` writes besides the report itself. */
export const FIGURE_FORMATS = ['svg', 'png'] as const;
export type FigureFormat = (typeof FIGURE_FORMATS)[number];

/** Chromium renders PNGs: $SKD_CHROMIUM, else the first of the usual install paths. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env['SKD_CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((c): c is string => c !== undefined && c !== '' && fs.existsSync(c));
}

/** A figure's file name: its own, or its section title, with anything but letters, digits, ".", "_" and "-" replaced, and "-glance". */
export const figureName = (figure: GlanceFigure) => figure.name ?? `${figure.title.replace(/[^\w.-]+/g, '_') || 'results'}-glance`;

/**
 * Writes each figure as `<dir>/<section>-glance.svg` and/or `.png` (drawn by headless Chromium at
 * twice the SVG's size, for print); returns the files written.
 */
export function writeFigures(figures: readonly GlanceFigure[], dir: string, formats: readonly FigureFormat[]): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const chromium = formats.includes('png') ? chromiumPath() : undefined;
  if (formats.includes('png') && !chromium) {
    throw new SkdError('--format png needs Chromium to draw the figure, and none was found', {
      hint: 'apt-get install chromium, or set SKD_CHROMIUM to its path; --format svg needs nothing',
    });
  }
  for (const figure of figures) {
    const base = path.join(dir, figureName(figure));
    if (formats.includes('svg')) {
      writeFileAtomic(`${base}.svg`, `<?xml version="1.0" encoding="UTF-8"?>\n${figure.svg}\n`);
      written.push(`${base}.svg`);
    }
    if (chromium) {
      writePng(chromium, figure, `${base}.png`);
      written.push(`${base}.png`);
    }
  }
  return written;
}

function writePng(chromium: string, figure: GlanceFigure, file: string): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-figure-'));
  try {
    const page = path.join(work, 'figure.html');
    fs.writeFileSync(
      page,
      `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0;background:white}svg{display:block}</style></head><body>${figure.svg}</body></html>`,
    );
    const shot = path.join(work, 'figure.png');
    const run = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--hide-scrollbars',
        '--no-first-run',
        `--user-data-dir=${path.join(work, 'profile')}`,
        '--force-device-scale-factor=2',
        `--window-size=${figure.width},${figure.height}`,
        `--screenshot=${shot}`,
        `file://${page}`,
      ],
      { encoding: 'utf8', timeout: 90_000 },
    );
    if (!fs.existsSync(shot))
      throw new SkdError(
        `Chromium drew no picture for ${file} (exit ${run.status ?? run.signal}): ${(run.stderr ?? '').trim().split('\n').slice(-2).join(' ')}`,
      );
    fs.copyFileSync(shot, `${file}.tmp`);
    fs.renameSync(`${file}.tmp`, file);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
