#!/usr/bin/env node
// Packs what a GPU machine without a package registry needs to run tools/gpu-check/check.cjs and the
// built `skd` CLI on the webgpu backend: this machine's Node binary, the CLI's runtime packages
// (built @skd/* packages, tfjs, tfjs-backend-webgpu, and Dawn's dawn.node for linux-x64 only) and the
// Vulkan loader. The repository itself (models, data, tools) travels as the working tree.
//   node tools/gpu-check/pack.cjs [--out=.gpu-check]   (build first: npm run build)
// Writes OUT/bundle.tar.xz (at most 64 MiB, the device tool's limit) and prints its size.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const out = path.resolve(REPO, (process.argv.find((a) => a.startsWith('--out=')) ?? '--out=.gpu-check').slice(6));
const LIMIT = 64 * 1024 * 1024;
const stage = path.join(out, 'stage');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(stage, 'node_modules'), { recursive: true });
fs.mkdirSync(path.join(stage, 'bin'));
fs.mkdirSync(path.join(stage, 'lib'));

/** Files of a package worth carrying: no tests, sources, maps or other platforms' binaries. */
function keep(name, relative) {
  if (/(^|\/)(node_modules|test|tests|__tests__|\.git)(\/|$)/.test(relative)) return false;
  if (name.startsWith('@skd/') && /^src\//.test(relative)) return false; // built into dist/
  if (/\.(map|md|ts)$/.test(relative) && !relative.endsWith('.d.ts')) return false;
  if (/\.spec\./.test(relative)) return false;
  if (name === 'webgpu') return relative === 'package.json' || relative.startsWith('dist/linux-x64/');
  if (name.startsWith('@tensorflow/')) return relative === 'package.json' || /^dist\/[^/]*\.node\.js$/.test(relative) || /^dist\/.*\.wasm$/.test(relative);
  if (name === '@skd/native') return relative === 'package.json' || relative.startsWith('dist/');
  return true;
}

function copyPackage(name, from, to) {
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const relative = path.relative(from, full);
      if (entry.isDirectory()) {
        if (/(^|\/)(node_modules|\.git)$/.test(relative)) continue;
        walk(full);
      } else if (keep(name, relative)) {
        fs.mkdirSync(path.dirname(path.join(to, relative)), { recursive: true });
        fs.copyFileSync(fs.realpathSync(full), path.join(to, relative));
      }
    }
  };
  walk(from);
}

/** The package.json Node would find for `name` from a module in `fromDir`. */
function lookup(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name, 'package.json');
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

const copied = new Map(); // a package's source folder -> where it went

/**
 * The CLI's runtime closure: dependencies, installed optional and peer dependencies, recursively.
 * Each package goes to the top level, or, where another version of it is there already, into the
 * node_modules of the package that needs it (as npm nests them).
 */
function closure(name, fromDir, dependentCopy = path.join(stage)) {
  // Looked up folder by folder, as Node does: `require.resolve` refuses package.json where a
  // package's "exports" leaves it out.
  const found = lookup(name, fromDir);
  if (!found) return; // an optional package that is not installed
  const dir = fs.realpathSync(path.dirname(found));
  if (copied.has(dir)) return;
  const top = path.join(stage, 'node_modules', name);
  const to = fs.existsSync(top) ? path.join(dependentCopy, 'node_modules', name) : top;
  copied.set(dir, to);
  copyPackage(name, dir, to);
  const json = JSON.parse(fs.readFileSync(found, 'utf8'));
  for (const dep of Object.keys({ ...json.dependencies, ...json.optionalDependencies, ...json.peerDependencies })) closure(dep, dir, to);
}

closure('@skd/cli', REPO);
for (const extra of ['@skd/ops', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu']) closure(extra, REPO);
fs.copyFileSync(process.execPath, path.join(stage, 'bin', 'node'));
// Dawn opens the Vulkan loader by name; GPU images often lack it (the driver's ICD is there).
const loader = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' })
  .split('\n')
  .map((l) => l.match(/libvulkan\.so\.1 \(libc6,x86-64\) => (\S+)/)?.[1])
  .find(Boolean);
if (!loader) throw new Error('no libvulkan.so.1 here to carry: apt-get install libvulkan1');
fs.copyFileSync(fs.realpathSync(loader), path.join(stage, 'lib', 'libvulkan.so.1'));
fs.writeFileSync(
  path.join(stage, 'VERSION'),
  `node ${process.version}; packed ${new Date().toISOString()} from ${execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim()}\n`,
);
execFileSync('tar', ['-C', stage, '-cJf', path.join(out, 'bundle.tar.xz'), '.'], { env: { ...process.env, XZ_OPT: '-6 -T2' } });
fs.rmSync(stage, { recursive: true, force: true });
const size = fs.statSync(path.join(out, 'bundle.tar.xz')).size;
process.stdout.write(`${path.relative(REPO, path.join(out, 'bundle.tar.xz'))}: ${(size / 2 ** 20).toFixed(1)} MiB (limit 64)\n`);
if (size > LIMIT) {
  process.stderr.write('the bundle is over the device tool limit of 64 MiB\n');
  process.exit(1);
}
