#!/usr/bin/env node
// One linear layer with its weight held in 16 bits against the same layer in float32, side by side in
// one run: microseconds per call and GFLOP/s at the row counts a teacher meets (a decode step of 1-4
// rows, SKD's verification of 4 rows x a block of 6, a prefill or a dense pass of 96-400 rows).
// The 16-bit weight is stored (out, in) as a checkpoint holds it; the float32 one (in, out), as skd's
// float32 models hold theirs. Each call reads a different copy of the weight (over 100 MB of copies in
// all), so no weight is served from cache. Rounds alternate the two; the best round of each is kept.
// Options: --rows=1,4,8,24,96,372 --shapes=960x960,960x2560,2560x960 (in x out) --dtype=bfloat16|float16
//          --rounds=4.
// Build first: npx nx run native:build.
const { loadAddon } = require('../../packages/native/dist/addon.js');
const { cpu, table } = require('./harness.cjs');

const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const rowsList = option('rows', '1,4,8,24,96,372').split(',').map(Number);
const shapes = option('shapes', '960x960,960x2560,2560x960')
  .split(',')
  .map((s) => s.split('x').map(Number));
const dtype = option('dtype', 'bfloat16');
const rounds = Number(option('rounds', 4));
const kind = { bfloat16: 0, float16: 1 }[dtype];
if (kind === undefined) throw new Error(`--dtype must be bfloat16 or float16, got ${dtype}`);

const loaded = loadAddon();
if (!loaded.addon) throw new Error(`the native addon did not load: ${loaded.reason ?? 'unknown reason'}`);
const { addon } = loaded;

// Values near 1 in either format: 0x3f80 is 1.0 in bfloat16, 0x3c00 in float16.
const one = dtype === 'bfloat16' ? 0x3f80 : 0x3c00;
const rows = [];
for (const [nIn, nOut] of shapes) {
  const elements = nIn * nOut;
  const halves = Array.from({ length: Math.max(4, Math.ceil(100e6 / (elements * 2))) }, () => {
    const w = new Uint16Array(elements);
    for (let i = 0; i < elements; i++) w[i] = one + (i % 61);
    return w;
  });
  const floats = Array.from({ length: Math.max(4, Math.ceil(100e6 / (elements * 4))) }, () => new Float32Array(elements).fill(0.01));
  for (const n of rowsList) {
    const x = new Float32Array(n * nIn).fill(0.5);
    const out = new Float32Array(n * nOut);
    const sides = {
      [dtype]: () => halves.forEach((w) => addon.linearHalf(x, w, kind, true, null, null, out, n, nIn, nOut)),
      float32: () => floats.forEach((w) => addon.linear(x, w, null, null, out, n, nIn, nOut)),
    };
    const calls = { [dtype]: halves.length, float32: floats.length };
    const best = { [dtype]: Infinity, float32: Infinity };
    Object.values(sides).forEach((side) => side()); // warm-up: the BLAS's first calls, the outputs' pages
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [dtype, 'float32'] : ['float32', dtype];
      for (const side of order) {
        const t0 = performance.now();
        sides[side]();
        best[side] = Math.min(best[side], ((performance.now() - t0) * 1000) / calls[side]);
      }
    }
    const gflops = (us) => ((2 * n * elements) / us / 1e3).toFixed(0);
    rows.push({
      shape: `${nIn} x ${nOut}`,
      rows: String(n),
      [dtype]: `${best[dtype].toFixed(0)} us (${gflops(best[dtype])} GFLOP/s)`,
      float32: `${best.float32.toFixed(0)} us (${gflops(best.float32)} GFLOP/s)`,
      [`${dtype} vs float32`]: `${(best.float32 / best[dtype]).toFixed(2)}x`,
    });
  }
}
const machine = cpu();
console.log(`CPU: ${machine.model} (${machine.isa}, ${machine.cores} cores); kernels: ${loaded.isa ?? 'default build'}; best of ${rounds} alternating rounds`);
console.log(table(rows, ['shape', 'rows', dtype, 'float32', `${dtype} vs float32`]));
