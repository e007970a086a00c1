#!/usr/bin/env node
// The native cached attention at the decode shapes of the real-shape distillation (docs/performance.md):
// the 360M teacher verifying SKD's blocks of 6, the 135M student's decode step, a prompt prefill, and a
// multi-head (no shared key/value heads) model's step and block. Microseconds per layer, median of 7
// rounds of 50 calls. Run: node tools/bench/cached-attention.cjs (SKD_ISA=avx2 for the AVX2 build).
const { loadAddon } = require('@skd/native');
const { cpu } = require('./harness.cjs');

const { addon, reason } = loadAddon();
if (!addon) throw new Error(reason);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const machine = cpu();
console.log(`CPU: ${machine.model} (${machine.isa}, ${machine.cores} cores); ${reason}`);
const SHAPES = [
  // name, batch, new tokens, heads, key/value heads, head size, cached tokens
  ['360M teacher verifying a block of 6', 4, 6, 15, 5, 64, 150],
  ['135M student decode step', 4, 1, 9, 3, 64, 150],
  ['360M teacher prefill of 90 tokens', 4, 90, 15, 5, 64, 0],
  ['12 heads, no shared key/value heads: decode step', 4, 1, 12, 12, 64, 150],
  ['12 heads, no shared key/value heads: block of 6', 4, 6, 12, 12, 64, 150],
];
for (const [name, B, S, H, Hkv, dh, len] of SHAPES) {
  const cap = 256;
  const ld = (H + 2 * Hkv) * dh;
  const qkv = Float32Array.from({ length: B * S * ld }, (_, i) => Math.sin(i) * 0.5);
  const keys = Float32Array.from({ length: B * Hkv * cap * dh }, (_, i) => Math.cos(i) * 0.5);
  const values = keys.slice();
  const lengths = new Int32Array(B).fill(len);
  const out = new Float32Array(B * S * H * dh);
  const run = () => addon.cachedAttention(qkv, keys, values, lengths, null, out, B, S, H, Hkv, dh, cap, 0.125, 0, 0);
  for (let i = 0; i < 20; i++) run();
  const rounds = [];
  for (let r = 0; r < 7; r++) {
    const t = now();
    for (let i = 0; i < 50; i++) run();
    rounds.push((now() - t) / 50);
  }
  rounds.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(52)} ${(rounds[3] * 1000).toFixed(0).padStart(6)} us per layer (${(rounds[0] * 1000).toFixed(0)}-${(rounds[6] * 1000).toFixed(0)})`,
  );
}
