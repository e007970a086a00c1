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
    if (bounded.length > 0) {
      // The 95% interval: a band along each curve, and a bar at every point (a single point has no band).
      marks.push(Plot.areaY(bounded, { x: 'step', y1: 'low', y2: 'high', z: key, fill: 'series', fillOpacity: 0.12 }));
      marks.push(Plot.ruleX(bounded, { x: 'step', y1: 'low', y2: 'high', stroke: 'series', strokeOpacity: 0.6 }));
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

  function drawChart(chart, domain) {
    const figure = document.createElement('figure');
    figure.className = 'chart';
    figure.dataset.chart = chart.id;
    figure.dataset.points = String(chart.rows.length);
    const title = document.createElement('h3');
    title.textContent = chart.title;
    figure.appendChild(title);
    try {
      const { marks, evaluation } = marksOf(chart);
      figure.appendChild(
        Plot.plot({
          width: 600,
          height: 300,
          marginLeft: 56,
          grid: true,
          x: { label: 'step' },
          y: { label: chart.y },
          color: { legend: true, domain },
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

  /** Replaces the container's charts with these; a series has the same colour in every chart. */
  function render(container, charts) {
    const domain = [...new Set(charts.flatMap((chart) => chart.rows.map((r) => r.series)))];
    const figures = charts.map((chart) => drawChart(chart, domain));
    container.replaceChildren(...figures);
    container.dataset.rendered = String(figures.filter((f) => !f.dataset.error).length);
  }

  window.skdCharts = { render };
})();
