import { escapeHtml } from './charts';
import { BASELINE_GROUP, groupAxes } from './groups';
import type { GroupResult, PairedSpec, SectionResult } from './report';

/**
 * The results at a glance: per section (a task), each method's headline test metric with its 95%
 * interval, one panel per setting (the group's other sweep values, e.g. a data size), the starting
 * student and the teacher (`--baseline` rows, or groups without the compared axis) as reference lines,
 * and the compared method (`--paired`, else skd) marked. Drawn here as a standalone SVG, so the page,
 * the dashboard and `skd report --format svg,png` show the same picture without a browser library.
 */

/** Headline metrics in the order a task's table leads with them (translation: chrF, as docs/results.md); anything else comes after. */
const HEADLINE_ORDER = ['passRate', 'exactMatch', 'chrf', 'rougeL', 'bleu', 'chrfpp'];

/** What a row or reference line shows: a value, its interval when known, and how many seeds made it. */
interface Point {
  readonly group: string;
  readonly value: number;
  readonly interval: readonly [number, number] | undefined;
  readonly seeds: number;
  /** bootstrap: 95% over test examples; seeds: mean ± std over seeds (runs without bootstrap scores). */
  readonly kind: 'bootstrap' | 'seeds' | 'none';
}

/** The metrics a section can lead with: final test metrics, not counts, breakdowns ("passRate[count]") or losses. */
export function headlineCandidates(result: SectionResult): string[] {
  const names = new Set(result.groups.flatMap((g) => [...Object.keys(g.metrics), ...Object.keys(g.bootstrap?.values ?? {})]));
  const usable = [...names].filter((m) => m !== 'count' && !m.includes('[') && !/loss|perplexity/i.test(m));
  const rank = (m: string) => (HEADLINE_ORDER.includes(m) ? HEADLINE_ORDER.indexOf(m) : HEADLINE_ORDER.length);
  return usable.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The section's headline metric: the one asked for when the section has it, else the first candidate. */
export function headlineMetric(result: SectionResult, wanted?: string): string | undefined {
  const candidates = headlineCandidates(result);
  return wanted !== undefined && candidates.includes(wanted) ? wanted : candidates[0];
}

export function pointOf(group: GroupResult, metric: string): Point | undefined {
  const boot = group.bootstrap;
  const value = boot?.values[metric];
  const interval = boot?.intervals[metric];
  if (value !== undefined && interval) return { group: group.group, value, interval: [interval[0], interval[1]], seeds: group.seeds, kind: 'bootstrap' };
  const stat = group.metrics[metric];
  if (!stat) return undefined;
  return stat.values.length > 1
    ? { group: group.group, value: stat.mean, interval: [stat.mean - stat.std, stat.mean + stat.std], seeds: group.seeds, kind: 'seeds' }
    : { group: group.group, value: stat.mean, interval: undefined, seeds: group.seeds, kind: 'none' };
}

/** The axis whose values are the rows (the compared one, else "method" when the groups have it). */
export function methodAxis(result: SectionResult, highlight: PairedSpec | undefined): string | undefined {
  if (highlight) return highlight.axis;
  return result.groups.some((g) => groupAxes(g.group).some(([axis]) => axis === 'method')) ? 'method' : undefined;
}

export interface GlanceLayout {
  readonly metric: string;
  /** Per setting (the other sweep values), its rows in the groups' order. */
  readonly panels: readonly { readonly setting: string; readonly rows: readonly (Point & { readonly label: string; readonly marked: boolean })[] }[];
  /**
   * Reference lines: --baseline models, evaluations of checkpoints (`skd eval --out`: the starting
   * student, the teacher) and groups without the method axis; one with a setting is drawn in that
   * setting's panel only.
   */
  readonly references: readonly (Point & { readonly label: string; readonly setting: string | undefined })[];
}

/** Which groups go where, and with which numbers; undefined when no group has the metric. */
export function glanceLayout(result: SectionResult, options: { metric?: string; highlight?: PairedSpec } = {}): GlanceLayout | undefined {
  const metric = headlineMetric(result, options.metric);
  if (metric === undefined) return undefined;
  const axis = methodAxis(result, options.highlight);
  const marked = options.highlight?.value ?? 'skd';
  const panels = new Map<string, (Point & { label: string; marked: boolean })[]>();
  const references: (Point & { label: string; setting: string | undefined })[] = [];
  for (const group of result.groups) {
    const point = pointOf(group, metric);
    if (!point) continue;
    const parts = groupAxes(group.group);
    const own = axis ? parts.find(([a]) => a === axis) : undefined;
    const setting = axis
      ? parts
          .filter(([a]) => a !== axis)
          .map(([a, v]) => (v ? `${a} ${v}` : a))
          .join(', ')
      : '';
    if (group.group.startsWith(BASELINE_GROUP) || (axis && !own)) {
      references.push({ ...point, label: group.group.startsWith(BASELINE_GROUP) ? group.group.slice(BASELINE_GROUP.length) : group.group, setting: undefined });
      continue;
    }
    const label = own ? own[1] : group.group;
    if (group.evaluation) {
      references.push({ ...point, label, setting: setting || undefined });
      continue;
    }
    panels.set(setting, [...(panels.get(setting) ?? []), { ...point, label, marked: own ? own[1] === marked : group.group === marked }]);
  }
  if (panels.size === 0 && references.length === 0) return undefined;
  return { metric, panels: [...panels].map(([setting, rows]) => ({ setting, rows })), references };
}

/** About `count` round tick positions (1, 2 or 5 times a power of ten) inside [low, high]. */
export function niceTicks(low: number, high: number, count = 6): number[] {
  const span = high - low;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  // The multiplier nearest (geometrically) to the raw step: 1, 2, 5 or 10.
  const error = raw / power;
  const step = (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1) * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toFixed(12)));
  return ticks;
}

/** Digits after the point that tell neighbouring ticks apart (0.25 apart: 2; 5 apart: 0). */
const tickDigits = (ticks: readonly number[]) =>
  ticks.length > 1 ? Math.max(0, -Math.floor(Math.log10(Math.abs((ticks[1] as number) - (ticks[0] as number))) + 1e-9)) : 3;

/** The x range: every value and interval, padded; a metric that never changes gets a window around it. */
function domainOf(points: readonly Point[]): [number, number] {
  const lows = points.map((p) => p.interval?.[0] ?? p.value);
  const highs = points.map((p) => p.interval?.[1] ?? p.value);
  let low = Math.min(...lows);
  let high = Math.max(...highs);
  const span = high - low;
  const pad = span > 0 ? span * 0.06 : Math.max(Math.abs(low) * 0.05, 0.01);
  low -= pad;
  high += pad;
  return [low, high];
}

const REFERENCE_COLOURS = ['#555555', '#8c564b', '#7f7f7f', '#bcbd22', '#17becf'];
const MARKED = '#d62728';
const OTHER = '#1f77b4';

/** The figure as a standalone SVG document (`title` on top); data attributes name each mark for tests. */
export function glanceSvg(layout: GlanceLayout, title: string): { svg: string; width: number; height: number } {
  const width = 760;
  const left = 190;
  const right = 28;
  const rowHeight = 24;
  const plotWidth = width - left - right;
  const refLines = layout.references.length;
  const top = 34 + (refLines ? 20 * refLines + 6 : 0);
  const points = [...layout.panels.flatMap((p) => p.rows), ...layout.references];
  const [low, high] = domainOf(points);
  const x = (v: number) => left + ((v - low) / (high - low)) * plotWidth;
  const ticks = niceTicks(low, high);
  const digits = tickDigits(ticks);
  const fmt = (v: number) => v.toFixed(Math.max(digits, 2));
  const describe = (p: Point) =>
    `${p.group}: ${fmt(p.value)}${p.interval ? ` [${fmt(p.interval[0])}, ${fmt(p.interval[1])}]` : ''} (${p.seeds} seed${p.seeds === 1 ? '' : 's'}${p.kind === 'bootstrap' ? ', 95% bootstrap interval' : p.kind === 'seeds' ? ', ± std over seeds' : ''})`;
  const out: string[] = [];
  const extents = new Map<string, [number, number]>();
  let y = top;
  for (const panel of layout.panels) {
    const panelTop = y;
    if (panel.setting) {
      out.push(`<text x="${left}" y="${y + 14}" font-weight="600" font-size="12">${escapeHtml(panel.setting)}</text>`);
      y += 20;
    }
    for (const row of panel.rows) {
      const cy = y + rowHeight / 2;
      const colour = row.marked ? MARKED : OTHER;
      out.push(`<g class="row" data-group="${escapeHtml(row.group)}"${row.marked ? ' data-marked="true"' : ''}><title>${escapeHtml(describe(row))}</title>`);
      out.push(`<text x="${left - 8}" y="${cy + 4}" text-anchor="end" font-size="12"${row.marked ? ' font-weight="700"' : ''}>${escapeHtml(row.label)}</text>`);
      out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${cy}" y2="${cy}" stroke="#f0f0f0"/>`);
      if (row.interval)
        out.push(
          `<line class="interval" x1="${x(row.interval[0]).toFixed(1)}" x2="${x(row.interval[1]).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="${colour}" stroke-width="2"/>`,
        );
      out.push(`<circle class="mark" cx="${x(row.value).toFixed(1)}" cy="${cy}" r="${row.marked ? 5.5 : 4.5}" fill="${colour}" data-value="${row.value}"/>`);
      out.push('</g>');
      y += rowHeight;
    }
    extents.set(panel.setting, [panelTop, y]);
    y += 8;
  }
  const bottom = y;
  // Reference lines across every panel (or their own setting's), each named with its value in the
  // key above; one name keeps one colour (the starting student of each data size).
  const labels = [...new Set(layout.references.map((r) => r.label))];
  const refs = layout.references.map((ref, i) => {
    const colour = REFERENCE_COLOURS[labels.indexOf(ref.label) % REFERENCE_COLOURS.length] as string;
    const rx = x(ref.value).toFixed(1);
    const [y1, y2] = (ref.setting !== undefined ? extents.get(ref.setting) : undefined) ?? [top, bottom];
    const keyY = 34 + 20 * i;
    const name = ref.setting ? `${ref.label} (${ref.setting})` : ref.label;
    return [
      `<g class="reference" data-group="${escapeHtml(ref.group)}"><title>${escapeHtml(describe(ref))}</title>`,
      ref.interval
        ? `<rect x="${x(ref.interval[0]).toFixed(1)}" y="${y1}" width="${(x(ref.interval[1]) - x(ref.interval[0])).toFixed(1)}" height="${y2 - y1}" fill="${colour}" fill-opacity="0.08"/>`
        : '',
      `<line x1="${rx}" x2="${rx}" y1="${y1}" y2="${y2}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<line x1="${left}" x2="${left + 24}" y1="${keyY + 8}" y2="${keyY + 8}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<text x="${left + 30}" y="${keyY + 12}" font-size="12">${escapeHtml(`${name}: ${fmt(ref.value)}${ref.interval ? ` [${fmt(ref.interval[0])}, ${fmt(ref.interval[1])}]` : ''}`)}</text>`,
      '</g>',
    ].join('');
  });
  const grid = ticks.map(
    (t) =>
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="#e4e4e4"/><text x="${x(t).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" font-size="11" fill="#444">${t.toFixed(digits)}</text>`,
  );
  const height = bottom + 40;
  const kinds = new Set(points.map((p) => p.kind));
  const note = kinds.has('bootstrap')
    ? 'bars: 95% bootstrap intervals over the test examples, seeds averaged'
    : kinds.has('seeds')
      ? 'bars: ± std over seeds'
      : '';
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="glance" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" data-metric="${escapeHtml(layout.metric)}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="20" font-size="14" font-weight="600">${escapeHtml(title)}</text>`,
    ...grid,
    ...refs,
    ...out,
    `<line x1="${left}" x2="${left + plotWidth}" y1="${bottom}" y2="${bottom}" stroke="#888"/>`,
    `<text x="${left + plotWidth / 2}" y="${bottom + 32}" text-anchor="middle" font-size="12">${escapeHtml(layout.metric)}${note ? ` (${escapeHtml(note)})` : ''}</text>`,
    '</svg>',
  ].join('\n');
  return { svg, width, height };
}
