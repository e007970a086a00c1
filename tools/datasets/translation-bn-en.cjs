#!/usr/bin/env node
// The translation students' pre-training corpus (the analogue of the paper's pretrained students):
// Bengali -> English pairs from the Bengali catalogues of the packages that carry an Assamese one
// (tools/datasets/assamese-catalogues.sh puts them in tmp/catalogues/mo-bn). Bengali is written in
// the same script as Assamese and shares much of its vocabulary, so a student pre-trained on it
// starts the Assamese task knowing a related language and none of its answers: every package of
// translation-as-en's eval and test splits is left out, and so is every pair whose English is one of
// their references. Its own eval and test (300 each, by a salted hash of the package) check the base.
// Run after tools/datasets/translation-as-en.cjs: node tools/datasets/translation-bn-en.cjs [--dir=D ...]
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { DATA, writeSplits } = require('./common.cjs');
const { catalogues, pairsOf } = require('./gettext.cjs');

const dirs = process.argv.filter((a) => a.startsWith('--dir=')).map((a) => a.slice(6));
if (dirs.length === 0) dirs.push('/usr/share/locale/bn/LC_MESSAGES', 'tmp/catalogues/mo-bn');

const task = path.join(DATA, 'translation-as-en');
const heldOut = ['eval', 'test'].flatMap((split) => {
  const file = path.join(task, `${split}.jsonl`);
  if (!fs.existsSync(file)) {
    console.error(`${path.relative(process.cwd(), file)} is missing: run node tools/datasets/translation-as-en.cjs first`);
    process.exit(2);
  }
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
});
const heldPackages = new Set(heldOut.map((r) => r.package));
const heldReferences = new Set(heldOut.map((r) => r.response));

const seen = new Set();
const pairs = [];
let dropped = 0;
for (const { pkg, file } of catalogues(dirs)) {
  if (heldPackages.has(pkg)) continue;
  for (const row of pairsOf(file, pkg)) {
    if (heldReferences.has(row.response)) dropped++;
    else if (!seen.has(row.prompt)) {
      seen.add(row.prompt);
      pairs.push(row);
    }
  }
}

const bucket = (pkg) => crypto.createHash('sha256').update(`translation-bn-en:${pkg}`).digest().readUInt32BE(0) % 100;
const held = (b) => pairs.filter((p) => bucket(p.package) === b).slice(0, 300);
writeSplits('translation-bn-en', { train: pairs.filter((p) => bucket(p.package) >= 2), eval: held(0), test: held(1) });
console.log(`left out: the ${heldPackages.size} packages of translation-as-en's eval and test, and ${dropped} pairs with one of their references`);
