// Shared timing helpers for the benchmarks: warm-up, then the median of repeated runs, so noisy
// 2-core machines still give comparable numbers. Ratios are always measured side by side in one run.
const fs = require('node:fs');
const os = require('node:os');
const { performance } = require('node:perf_hooks');

async function timeIt(fn, { warmup = 1, repeats = 5, maxSeconds = 20 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  const start = performance.now();
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    if ((performance.now() - start) / 1000 > maxSeconds) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The middle value, or the mean of the middle two (the same statistic for every side of a comparison). */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padStart(widths[i])).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}

/** The CPU's model name and the widest vector ISA it has (printed beside every figure). */
function cpu() {
  const info = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
  const isa = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : flags.has('sse4_2') ? 'SSE4.2' : 'unknown';
  return { model: /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? os.cpus()[0]?.model ?? 'unknown', isa, cores: os.cpus().length };
}

module.exports = { cpu, median, timeIt, table };
