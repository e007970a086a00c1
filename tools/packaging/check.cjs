#!/usr/bin/env node
// Packs every publishable package as `npm publish` would and installs the tarballs into fresh
// consumer projects outside the workspace, as a stranger would:
// - every tarball carries LICENSE (equal to the root's), README.md, package.json and its built
//   dist/, no tests and no TypeScript sources; source maps carry their sources (sourcesContent);
// - metadata: license, repository, homepage, bugs, engines; internal dependencies as real ranges;
//   tfjs-core a peer dependency, so a consumer has one copy;
// - a consumer of @skd/backend alone does not pull the tfjs umbrella (size printed);
// - every package README's example (the ```js block after "readme-example") runs in a consumer
//   that installed all tarballs;
// - a consumer of @skd/core, @skd/divergences and @skd/models alone (with the skd packages they
//   depend on) builds two tiny GPTs and computes the forward KL between them;
// - `nx release` is configured: a dry run versions every publishable package (and their ranges on
//   each other) together, never the private ones, and writes a changelog from the commits. Publishing
//   is a maintainer's `npx nx release publish`; CI never publishes.
// Needs the packages built (`nx run-many -t build`) and the npm registry for third-party packages.
// The native addon is not compiled in the consumers (SKD_NATIVE=off): its build is checked by
// @skd/native's own tests. Run: node tools/packaging/check.cjs [--keep]
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const keep = process.argv.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-packaging-'));
const problems = [];
const problem = (line) => problems.push(line);
const say = (line) => process.stdout.write(`packaging: ${line}\n`);

const license = fs.readFileSync(path.join(root, 'LICENSE'));
const packages = fs
  .readdirSync(path.join(root, 'packages'))
  .map((dir) => ({ dir: path.join(root, 'packages', dir), pkg: JSON.parse(fs.readFileSync(path.join(root, 'packages', dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);
const versions = new Map(packages.map(({ pkg }) => [pkg.name, pkg.version]));

function checkMetadata({ pkg }) {
  for (const field of ['description', 'license', 'repository', 'homepage', 'bugs', 'engines', 'main', 'types']) {
    if (!pkg[field]) problem(`${pkg.name}: package.json has no "${field}"`);
  }
  for (const [name, range] of Object.entries(pkg.dependencies ?? {})) {
    if (name.startsWith('@skd/') && range !== `^${versions.get(name)}`)
      problem(`${pkg.name}: depends on ${name} as "${range}", expected "^${versions.get(name)}"`);
  }
  if (pkg.dependencies?.['@tensorflow/tfjs-core']) problem(`${pkg.name}: @tensorflow/tfjs-core must be a peer dependency (one copy per consumer)`);
  if (pkg.dependencies?.['@tensorflow/tfjs']) problem(`${pkg.name}: depends on the @tensorflow/tfjs umbrella`);
}

function pack({ dir, pkg }) {
  const [result] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const files = result.files.map((f) => f.path);
  for (const required of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) {
    if (!files.includes(required)) problem(`${pkg.name}: the tarball has no ${required}`);
  }
  for (const file of files) {
    if (/\.spec\./.test(file)) problem(`${pkg.name}: the tarball ships a test, ${file}`);
    if (/^src\/.*\.ts$/.test(file)) problem(`${pkg.name}: the tarball ships a TypeScript source, ${file}`);
    if (file.endsWith('.js.map')) {
      const map = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
      if (!Array.isArray(map.sourcesContent) || map.sourcesContent.length !== map.sources.length) problem(`${pkg.name}: ${file} has no sourcesContent`);
    }
  }
  if (!fs.readFileSync(path.join(dir, 'LICENSE')).equals(license)) problem(`${pkg.name}: LICENSE differs from the root LICENSE`);
  return { name: pkg.name, tarball: path.join(work, result.filename), files: files.length, size: result.size };
}

function consumer(name, tarballs) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, version: '0.0.0' }));
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, SKD_NATIVE: 'off' },
  });
  if (result.status !== 0) throw new Error(`npm install in ${dir} failed:\n${result.stdout}\n${result.stderr}`);
  return dir;
}

function sizeOf(dir) {
  return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]) * 1024;
}

/** The ```js block following the readme-example marker of a README, if any. */
function readmeExample(readme) {
  const match = /readme-example[^\n]*\n```js\n([\s\S]*?)\n```/.exec(readme);
  return match ? match[1] : undefined;
}

/** Every skd package `names` need, themselves included (their internal dependencies, transitively). */
function withInternalDependencies(names) {
  const all = new Set();
  const visit = (name) => {
    if (all.has(name)) return;
    all.add(name);
    const { pkg } = packages.find((p) => p.pkg.name === name);
    Object.keys(pkg.dependencies ?? {})
      .filter((d) => d.startsWith('@skd/'))
      .forEach(visit);
  };
  names.forEach(visit);
  return [...all];
}

// Two tiny GPTs over bytes, the forward KL of the student from the teacher over a sequence: a
// number > 0, and 0 between a model and itself.
const KD_SCRIPT = `
const tf = require('@tensorflow/tfjs-core');
const { ByteTokenizer, GptModel, gptConfig } = require('@skd/models');
const { forwardKlEntry, divergenceOptions } = require('@skd/divergences');
const tokenizer = new ByteTokenizer();
const config = (layers, dModel) => gptConfig({ vocabSize: tokenizer.vocabSize, layers, dModel, heads: 2, contextLength: 32 });
const teacher = new GptModel(config(2, 32), { seed: 1 });
const student = new GptModel(config(1, 16), { seed: 2 });
const kl = forwardKlEntry.create(divergenceOptions({ temperature: 1 }), {});
const tokens = tf.tensor2d([tokenizer.encode('12+30=42')], undefined, 'int32');
const mean = (a, b) => tf.tidy(() => tf.mean(kl.perToken({ studentLogits: a.logits(tokens), teacherLogits: b.logits(tokens) })).dataSync()[0]);
console.log(JSON.stringify({ kl: mean(student, teacher), self: mean(teacher, teacher) }));
`;

function checkKdConsumer(tarball) {
  const names = withInternalDependencies(['@skd/core', '@skd/divergences', '@skd/models']);
  const dir = consumer('kd-consumer', names.map(tarball));
  fs.writeFileSync(path.join(dir, 'kd.cjs'), KD_SCRIPT);
  const run = spawnSync(process.execPath, ['kd.cjs'], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, SKD_THREADS: '1' } });
  let result;
  try {
    result = JSON.parse(run.stdout.trim().split('\n').at(-1));
  } catch {
    return problem(`the KD consumer (${names.join(', ')}) failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  if (!(result.kl > 0 && Number.isFinite(result.kl)) || Math.abs(result.self) > 1e-6)
    problem(`the KD consumer computed KL ${result.kl} (expected > 0) and ${result.self} between a model and itself (expected 0)`);
  else
    say(
      `a consumer of ${names.join(', ')}: forward KL of a tiny student from a tiny teacher ${result.kl.toFixed(4)}, of the teacher from itself ${result.self.toExponential(1)}`,
    );
}

/** `nx release` dry runs: one version for every publishable package, a changelog from the commits. */
function checkRelease() {
  const nx = (args) =>
    spawnSync('npx', ['nx', 'release', ...args, '--dry-run'], { cwd: root, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false' }, timeout: 300_000 });
  const next = '0.99.0';
  const version = nx(['version', next]);
  if (version.status !== 0) return problem(`nx release version --dry-run failed:\n${version.stdout}\n${version.stderr}`);
  for (const { pkg } of packages) {
    if (!version.stdout.includes(`New version ${next} written to manifest: packages/${pkg.name.replace('@skd/', '')}/package.json`))
      problem(`nx release version does not version ${pkg.name}`);
  }
  if (/written to manifest: (packages\/testing|tools)\//.test(version.stdout)) problem('nx release version versions a private project');
  if (!version.stdout.includes(`+     "@skd/core": "^${next}"`)) problem('nx release version leaves the internal dependency ranges behind');
  const changelog = nx(['changelog', next]);
  // The changelog lists the commits that touched the released packages (a docs-only commit is left
  // out) and whose subject is prose: Nx reads a subject starting "word: " as a conventional-commit
  // type, and drops the types nx.json does not configure.
  const subject = execFileSync('git', ['log', '--format=%s', '--', 'packages', ':!packages/testing'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .find((line) => line.trim() !== '' && !/^\w+(\([^)]*\))?!?: /.test(line));
  if (subject === undefined) return problem('no commit with a prose subject touches the released packages, so the changelog cannot be checked');
  if (changelog.status !== 0) return problem(`nx release changelog --dry-run failed:\n${changelog.stdout}\n${changelog.stderr}`);
  if (!changelog.stdout.includes(`## ${next}`) || !changelog.stdout.includes(subject.slice(0, 60)))
    problem(`nx release changelog does not list the commits (looked for "${subject.slice(0, 60)}")`);
  const ci = fs.readFileSync(path.join(root, '.ci/run'), 'utf8');
  if (/release publish|npm publish/.test(ci)) problem('.ci/run publishes');
  say(`nx release: a dry run versions ${packages.length} packages to ${next} together and writes a changelog from the commits`);
}

function main() {
  for (const p of packages) checkMetadata(p);
  const packed = packages.map(pack);
  for (const p of packed) say(`${p.name}: ${p.files} files, ${(p.size / 1024).toFixed(0)} KiB packed`);
  const tarball = (name) => packed.find((p) => p.name === name).tarball;
  // @skd/backend with the skd packages it needs (they are not on a registry): what a user of the backend gets.
  const backendOnly = consumer('backend-consumer', ['@skd/core', '@skd/ops', '@skd/native', '@skd/backend'].map(tarball));
  const modules = path.join(backendOnly, 'node_modules');
  const installed = fs.readdirSync(path.join(modules, '@tensorflow'));
  const megabytes = sizeOf(modules) / 2 ** 20;
  say(`a consumer of @skd/backend: ${megabytes.toFixed(0)} MB in node_modules; @tensorflow/${installed.join(', @tensorflow/')}`);
  // 105 MB when measured (tfjs-core, -layers, -backend-cpu, -backend-wasm); with the umbrella it was 340 MB.
  if (megabytes > 150) problem(`a consumer of @skd/backend has ${megabytes.toFixed(0)} MB of node_modules (at most 150 expected)`);
  if (installed.includes('tfjs')) problem('a consumer of @skd/backend installs the @tensorflow/tfjs umbrella');
  if (fs.existsSync(path.join(modules, 'core-js'))) problem('a consumer of @skd/backend installs core-js');
  checkKdConsumer(tarball);
  // Every package together: each README's example runs.
  const everything = consumer(
    'full-consumer',
    packed.map((p) => p.tarball),
  );
  say(`a consumer of every package: ${(sizeOf(path.join(everything, 'node_modules')) / 2 ** 20).toFixed(0)} MB in node_modules`);
  for (const { dir, pkg } of packages) {
    const example = readmeExample(fs.readFileSync(path.join(dir, 'README.md'), 'utf8'));
    if (!example) continue;
    const file = path.join(everything, `example-${path.basename(dir)}.cjs`);
    fs.writeFileSync(file, `${example}\n`);
    const run = spawnSync(process.execPath, [file], { cwd: everything, encoding: 'utf8', timeout: 120_000, env: { ...process.env, SKD_THREADS: '1' } });
    if (run.status !== 0) problem(`${pkg.name}: the README example failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    else say(`${pkg.name}: README example ran (${run.stdout.trim().split('\n').length} lines of output)`);
  }
}

try {
  main();
  checkRelease();
} finally {
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else say(`kept ${work}`);
}
if (problems.length) {
  process.stderr.write(`packaging: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
say('every package packs, installs and runs its README example');
