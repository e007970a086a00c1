// skd's charts, drawn in the browser with Observable Plot (inlined before this script, with d3).
// The data comes from packages/cli/src/charts.ts: per chart, rows {series, step, value, low?, high?,
// split?} and, for noisy per-step curves, the same rows smoothed.
/* global Plot */
(function () {
  'use strict';

  function seriesCounts(rows) {
    const counts = new Map();
    for (const row of rows) counts.set(row.series, (counts.get(row.series) || 0) + 1);
    return counts;
  }

  function marksOf(chart) {
    const rows = chart.rows;
    const evaluation = rows.some((r) => r.split !== undefined);
    const key = (r) => r.series + '\u0000' + (r.split || '');
    const marks = [];
    const bounded = rows.filter((r) => r.low !== undefined && r.high !== undefined);
    if (bounded.length > 0 && chart.smoothed) {
      // A per-step curve's band: the range of the series' runs (a group's seeds) at each step.
      marks.push(Plot.areaY(bounded, { x: 'step', y1: 'low', y2: 'high', z: 'series', fill: 'series', fillOpacity: 0.08 }));
    } else if (bounded.length > 0) {
      // The 95% interval: a bar at every point, nudged sideways per series so bars at one step stay
      // apart; a band along each curve only while few series share the chart (more overlap into a block).
      const names = [...new Set(bounded.map((r) => r.series))];
      const steps = rows.map((r) => r.step);
      const span = Math.max(1, Math.max(...steps) - Math.min(...steps));
      const nudge = (r) => r.step + (names.indexOf(r.series) - (names.length - 1) / 2) * span * 0.006;
      if (names.length <= 3) marks.push(Plot.areaY(bounded, { x: 'step', y1: 'low', y2: 'high', z: key, fill: 'series', fillOpacity: 0.1 }));
      marks.push(Plot.ruleX(bounded, { x: names.length > 1 ? nudge : 'step', y1: 'low', y2: 'high', stroke: 'series', strokeOpacity: 0.6 }));
    }
    if (chart.smoothed) {
      marks.push(Plot.line(rows, { x: 'step', y: 'value', z: 'series', stroke: 'series', strokeOpacity: 0.25, strokeWidth: 1 }));
      marks.push(Plot.line(chart.smoothed, { x: 'step', y: 'value', z: 'series', stroke: 'series', strokeWidth: 2 }));
    } else {
      marks.push(Plot.line(rows, { x: 'step', y: 'value', z: key, stroke: 'series', strokeWidth: 2 }));
    }
    // Points: every evaluation (few, and each one matters); a per-step curve's only point when it has one.
    const counts = seriesCounts(rows);
    const dots = evaluation ? rows : rows.filter((r) => counts.get(r.series) === 1);
    if (dots.length > 0) {
      marks.push(Plot.dot(dots, { x: 'step', y: 'value', stroke: 'series', fill: 'series', r: 3.5, ...(evaluation ? { symbol: 'split' } : {}) }));
    }
    marks.push(Plot.tip(chart.smoothed ? rows : dots.length ? dots : rows, Plot.pointer({ x: 'step', y: 'value', stroke: 'series', channels: { series: 'series', split: 'split' } })));
    return { marks, evaluation };
  }

  /** A metric that never changes would get a zero-width axis (one tick, six decimals): give it a window. */
  function yScale(chart) {
    const values = chart.rows.flatMap((r) => [r.value, r.low, r.high]).filter((v) => v !== undefined);
    const low = Math.min(...values);
    const high = Math.max(...values);
    if (!(high > low)) {
      const pad = Math.max(Math.abs(low) * 0.05, 0.01);
      return { label: chart.y, domain: [low - pad, high + pad], tickFormat: '~g' };
    }
    return { label: chart.y, nice: true, tickFormat: '~g' };
  }

  function drawChart(chart, palette, width) {
    const figure = document.createElement('figure');
    figure.className = 'chart';
    figure.dataset.chart = chart.id;
    figure.dataset.points = String(chart.rows.length);
    const title = document.createElement('h3');
    title.textContent = chart.title;
    figure.appendChild(title);
    try {
      const { marks, evaluation } = marksOf(chart);
      // The legend lists this chart's series only, each in the colour it has in every chart.
      const domain = [...new Set(chart.rows.map((r) => r.series))];
      figure.appendChild(
        Plot.plot({
          width,
          height: 300,
          marginLeft: 56,
          grid: true,
          x: { label: 'step' },
          y: yScale(chart),
          color: { legend: true, domain, range: domain.map((s) => palette.get(s)) },
          ...(evaluation ? { symbol: { legend: true } } : {}),
          marks,
        }),
      );
    } catch (error) {
      figure.dataset.error = String(error);
      console.error('skd chart ' + chart.id + ': ' + error);
    }
    return figure;
  }

  const COLOURS = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2', '#97bbf5', '#9c6b4e', '#9498a0', '#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02'];

  /** Two charts side by side on a wide screen, one on a narrow one. */
  function chartWidth(container) {
    const available = container.clientWidth || document.documentElement.clientWidth || 1200;
    return Math.max(420, Math.min(900, available >= 1100 ? Math.floor(available / 2) - 40 : available - 30));
  }

  /** Replaces the container's charts with these; a series has the same colour in every chart. */
  function render(container, charts) {
    const series = [...new Set(charts.flatMap((chart) => chart.rows.map((r) => r.series)))];
    const palette = new Map(series.map((s, i) => [s, COLOURS[i % COLOURS.length]]));
    const draw = () => {
      const width = chartWidth(container);
      const figures = charts.map((chart) => drawChart(chart, palette, width));
      container.replaceChildren(...figures);
      container.dataset.rendered = String(figures.filter((f) => !f.dataset.error).length);
      container.dataset.width = String(width);
    };
    draw();
    container.skdRedraw = draw;
  }

  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => document.querySelectorAll('.charts').forEach((c) => c.skdRedraw && c.skdRedraw()), 200);
  });

  window.skdCharts = { render };
})();
