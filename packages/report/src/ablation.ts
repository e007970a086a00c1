import { escapeHtml } from './charts';
import { niceTicks, pointOf } from './glance';
import { BASELINE_GROUP, groupAxes } from './groups';
import type { GroupResult, SectionResult } from './report';

/**
 * Ablation figures: when a section's groups vary a numeric sweep value (SKD's K, the draft block, a
 * temperature) over three or more values, the headline metric, SKD's acceptance rate and the cost of a
 * training step are drawn against that value, one figure per combination of the other sweep values.
 * A standalone SVG like the glance figure, in report.html and written by `--format`.
 */

/** One group of an ablation: its value of the varied axis and what was measured there. */
export interface AblationPoint {
  readonly value: number;
  /** The value as the sweep wrote it (the tick label). */
  readonly label: string;
  readonly group: string;
  readonly seeds: number;
  /** The headline metric, with its 95% bootstrap interval (or ± std over seeds) when known. */
  readonly metric: { readonly value: number; readonly interval: readonly [number, number] | undefined } | undefined;
  readonly acceptance: number | undefined;
  readonly secondsPerStep: number | undefined;
}

export interface AblationLayout {
  /** The varied axis, as the sweep named it (e.g. "k", or "sampler.options.topK"). */
  readonly axis: string;
  /** The other sweep values these points share ("data=100"), empty when there are none. */
  readonly setting: string;
  readonly metric: string;
  /** In increasing order of the axis value. */
  readonly points: readonly AblationPoint[];
}

const numeric = (text: string): number | undefined => {
  if (text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
};

/** The section's ablations of `metric`: every numeric axis with at least `least` values, per setting of the other axes. */
export function ablationLayouts(result: SectionResult, metric: string | undefined, least = 3): AblationLayout[] {
  if (metric === undefined) return [];
  const groups = result.groups.filter((g) => !g.evaluation && !g.group.startsWith(BASELINE_GROUP));
  const axesOf = new Map(groups.map((g) => [g.group, groupAxes(g.group)] as const));
  const names = [...new Set(groups.flatMap((g) => (axesOf.get(g.group) ?? []).map(([axis]) => axis)))];
  const layouts: AblationLayout[] = [];
  for (const axis of names) {
    const having = groups.filter((g) => (axesOf.get(g.group) ?? []).some(([a]) => a === axis));
    const valueOf = (g: GroupResult) => (axesOf.get(g.group) ?? []).find(([a]) => a === axis)?.[1] ?? '';
    if (having.some((g) => numeric(valueOf(g)) === undefined)) continue;
    const slices = new Map<string, GroupResult[]>();
    for (const g of having) {
      const setting = (axesOf.get(g.group) ?? [])
        .filter(([a]) => a !== axis)
        .map(([a, v]) => (v ? `${a}=${v}` : a))
        .join(', ');
      slices.set(setting, [...(slices.get(setting) ?? []), g]);
    }
    for (const [setting, members] of slices) {
      if (new Set(members.map((g) => numeric(valueOf(g)))).size < least) continue;
      const points = members
        .map((g): AblationPoint => {
          const point = pointOf(g, metric);
          return {
            value: numeric(valueOf(g)) as number,
            label: valueOf(g),
            group: g.group,
            seeds: g.seeds,
            metric: point ? { value: point.value, interval: point.interval } : undefined,
            acceptance: g.acceptance?.mean,
            secondsPerStep: g.secondsPerStep?.mean,
          };
        })
        .sort((a, b) => a.value - b.value);
      if (points.some((p) => p.metric)) layouts.push({ axis, setting, metric, points });
    }
  }
  return layouts;
}

interface Panel {
  readonly name: string;
  readonly values: readonly (readonly [number, number | undefined, readonly [number, number] | undefined])[];
}

const PANEL_WIDTH = 250;
const PANEL_HEIGHT = 170;
const COLOUR = '#1f77b4';

/** One panel: a value per point (x: the points in order, evenly spaced), with bars where there is an interval. */
function panelSvg(panel: Panel, labels: readonly string[], left: number, top: number): string {
  const known = panel.values.filter((v) => v[1] !== undefined);
  const lows = known.map(([, y, i]) => i?.[0] ?? (y as number));
  const highs = known.map(([, y, i]) => i?.[1] ?? (y as number));
  let low = Math.min(...lows);
  let high = Math.max(...highs);
  const pad = high > low ? (high - low) * 0.08 : Math.max(Math.abs(low) * 0.05, 0.01);
  low -= pad;
  high += pad;
  const plotLeft = left + 46;
  const plotWidth = PANEL_WIDTH - 58;
  const n = labels.length;
  const x = (i: number) => plotLeft + (n === 1 ? plotWidth / 2 : (i / (n - 1)) * plotWidth);
  const y = (v: number) => top + PANEL_HEIGHT - ((v - low) / (high - low)) * PANEL_HEIGHT;
  const ticks = niceTicks(low, high, 4);
  const step = ticks.length > 1 ? Math.abs((ticks[1] as number) - (ticks[0] as number)) : 1;
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const out = [`<g class="panel" data-panel="${escapeHtml(panel.name)}">`];
  out.push(`<text x="${plotLeft + plotWidth / 2}" y="${top - 10}" text-anchor="middle" font-size="12" font-weight="600">${escapeHtml(panel.name)}</text>`);
  for (const t of ticks) {
    out.push(`<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${plotLeft - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#444">${t.toFixed(digits)}</text>`);
  }
  labels.forEach((label, i) =>
    out.push(`<text x="${x(i).toFixed(1)}" y="${top + PANEL_HEIGHT + 16}" text-anchor="middle" font-size="11" fill="#444">${escapeHtml(label)}</text>`),
  );
  const path = panel.values.flatMap(([i, v]) => (v === undefined ? [] : [`${x(i).toFixed(1)},${y(v).toFixed(1)}`]));
  if (path.length > 1) out.push(`<polyline points="${path.join(' ')}" fill="none" stroke="${COLOUR}" stroke-width="1.5"/>`);
  for (const [i, v, interval] of panel.values) {
    if (v === undefined) continue;
    if (interval)
      out.push(
        `<line class="interval" x1="${x(i).toFixed(1)}" x2="${x(i).toFixed(1)}" y1="${y(interval[0]).toFixed(1)}" y2="${y(interval[1]).toFixed(1)}" stroke="${COLOUR}" stroke-width="2"/>`,
      );
    out.push(`<circle class="mark" cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="4" fill="${COLOUR}" data-value="${v}"/>`);
  }
  out.push(`<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${top + PANEL_HEIGHT}" y2="${top + PANEL_HEIGHT}" stroke="#888"/>`);
  out.push('</g>');
  return out.join('\n');
}

/** The figure as a standalone SVG: the metric, the acceptance rate and seconds per step against the axis (panels without data left out). */
export function ablationSvg(layout: AblationLayout, title: string): { svg: string; width: number; height: number } {
  const labels = layout.points.map((p) => p.label);
  const panels: Panel[] = [
    { name: `test ${layout.metric}`, values: layout.points.map((p, i) => [i, p.metric?.value, p.metric?.interval] as const) },
    { name: 'acceptance rate', values: layout.points.map((p, i) => [i, p.acceptance, undefined] as const) },
    { name: 'seconds per step', values: layout.points.map((p, i) => [i, p.secondsPerStep, undefined] as const) },
  ].filter((panel) => panel.values.some(([, v]) => v !== undefined));
  const top = 62;
  const width = 24 + panels.length * (PANEL_WIDTH + 16);
  const height = top + PANEL_HEIGHT + 52;
  const note = layout.points.some((p) => p.metric?.interval) ? ' (bars: 95% intervals, or ± std over seeds)' : '';
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="ablation" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" data-axis="${escapeHtml(layout.axis)}" data-metric="${escapeHtml(layout.metric)}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="20" font-size="14" font-weight="600">${escapeHtml(title)}</text>`,
    ...panels.map((panel, i) => panelSvg(panel, labels, 12 + i * (PANEL_WIDTH + 16), top)),
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle" font-size="12">${escapeHtml(layout.axis)}${escapeHtml(note)}</text>`,
    '</svg>',
  ].join('\n');
  return { svg, width, height };
}
