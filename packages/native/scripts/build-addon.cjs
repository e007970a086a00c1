#!/usr/bin/env node
// Builds the native kernels from source with node-gyp against the system's BLAS (oneDNN, else
// OpenBLAS; see blas-flags.cjs). Never fails the install: without a BLAS or a toolchain it prints one
// line saying what to install, and skd runs on stock wasm. SKD_NATIVE=off skips the build.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { findBlas } = require('./blas-flags.cjs');

const root = path.resolve(__dirname, '..');
const say = (line) => process.stdout.write(`skd-native: ${line}\n`);

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally; npm's bundled copy is used
  }
  return candidates.find((file) => file && fs.existsSync(file));
}

function main() {
  if (process.env.SKD_NATIVE === 'off') return say('skipped (SKD_NATIVE=off)');
  const blas = findBlas();
  if (!blas) {
    return say(
      'no BLAS found; skd will use stock wasm kernels. For 20x+ faster CPU training: apt-get install libdnnl-dev (or libopenblas-dev), then npm rebuild @skd/native',
    );
  }
  const gyp = nodeGyp();
  if (!gyp) return say('node-gyp not found; skd will use stock wasm kernels. Install node-gyp, then npm rebuild @skd/native');
  const args = [gyp, 'rebuild', '-j', 'max'];
  // Node's headers ship with Debian's nodejs; pointing node-gyp at them avoids a download.
  const headers = [path.join(path.dirname(process.execPath), '..'), '/usr'].find((dir) => fs.existsSync(path.join(dir, 'include/node/node_api.h')));
  if (headers) args.push(`--nodedir=${headers}`);
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-5).join(' | ');
    return say(`build failed, skd will use stock wasm kernels: ${tail}`);
  }
  say(`built against ${blas.name} (${blas.include})`);
}

main();
