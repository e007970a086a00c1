#!/usr/bin/env node
// Assamese -> English parallel corpus from gettext catalogues: the ones this machine has installed
// (/usr/share/locale/as/LC_MESSAGES) and every other one Debian ships, which
// tools/datasets/assamese-catalogues.sh collects into tmp/catalogues/mo. Cleans accelerator marks,
// drops strings with placeholders or markup, deduplicates, and splits BY SOURCE PACKAGE (a stable
// hash of its name) so no test string leaks into training.
// Run: node tools/datasets/translation-as-en.cjs [--dir=D ...] [--eval=300] [--test=600]
const crypto = require('node:crypto');
const { writeSplits } = require('./common.cjs');
const { catalogues, pairsOf } = require('./gettext.cjs');

const option = (name) => process.argv.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
const dirs = option('dir');
if (dirs.length === 0) dirs.push('/usr/share/locale/as/LC_MESSAGES', 'tmp/catalogues/mo');
const evalSize = Number(option('eval')[0] ?? 300);
const testSize = Number(option('test')[0] ?? 600);

const byPackage = new Map();
for (const { pkg, file } of catalogues(dirs)) byPackage.set(pkg, pairsOf(file, pkg));

// Deduplicate by source text across packages (first occurrence wins, packages in name order).
const seen = new Set();
for (const [pkg, rows] of byPackage)
  byPackage.set(
    pkg,
    rows.filter((r) => !seen.has(r.prompt) && seen.add(r.prompt)),
  );

// Whole packages go to test, then eval, in the order of a hash of their names, until each split
// holds its size; every other package trains. The order depends on nothing but the names, so adding
// catalogues moves few packages between splits.
const hash = (name) => crypto.createHash('sha256').update(name).digest('hex');
const order = [...byPackage.keys()].sort((a, b) => (hash(a) < hash(b) ? -1 : 1));
const held = { test: [], eval: [] };
const heldPackages = { test: [], eval: [] };
const train = [];
for (const pkg of order) {
  const rows = byPackage.get(pkg);
  if (rows.length === 0) continue;
  const split = held.test.length < testSize ? 'test' : held.eval.length < evalSize ? 'eval' : 'train';
  if (split === 'train') train.push(...rows);
  else {
    held[split].push(...rows);
    heldPackages[split].push(pkg);
  }
}
// Training keeps package name order (the sampler shuffles anyway; the file diffs stay readable).
train.sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
const sizes = writeSplits('translation-as-en', { train, eval: held.eval, test: held.test });
console.log(`${byPackage.size} packages from ${dirs.join(', ')}`);
console.log(`test packages: ${heldPackages.test.join(', ')}`);
console.log(`eval packages: ${heldPackages.eval.join(', ')}`);
if (sizes.train < 1000) console.log('warning: fewer than 1000 training pairs');
