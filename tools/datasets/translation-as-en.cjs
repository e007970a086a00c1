#!/usr/bin/env node
// Assamese -> English parallel corpus from gettext catalogues: the ones this machine has installed
// (/usr/share/locale/as/LC_MESSAGES) and every other one Debian ships, which
// tools/datasets/assamese-catalogues.sh collects into tmp/catalogues/mo. Cleans accelerator marks,
// drops strings with placeholders or markup, deduplicates, and splits BY SOURCE PACKAGE (a stable
// hash of its name) so no test string leaks into training.
// Run: node tools/datasets/translation-as-en.cjs [--dir=D ...] [--eval=300] [--test=600]
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { writeSplits } = require('./common.cjs');

const option = (name) => process.argv.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
const dirs = option('dir');
if (dirs.length === 0) dirs.push('/usr/share/locale/as/LC_MESSAGES', 'tmp/catalogues/mo');
const evalSize = Number(option('eval')[0] ?? 300);
const testSize = Number(option('test')[0] ?? 600);

/** Parses a GNU MO file: [msgid, msgstr] pairs (first plural form; message context stripped). */
function readMo(file) {
  const buf = fs.readFileSync(file);
  const magic = buf.readUInt32LE(0);
  const le = magic === 0x950412de;
  if (!le && magic !== 0xde120495) throw new Error(`${file}: not a gettext MO file`);
  const u32 = (at) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const count = u32(8);
  const originals = u32(12);
  const translations = u32(16);
  const text = (table, i) => buf.toString('utf8', u32(table + 8 * i + 4), u32(table + 8 * i + 4) + u32(table + 8 * i));
  const pairs = [];
  for (let i = 0; i < count; i++) {
    const source = text(originals, i).split('\0')[0];
    const target = text(translations, i).split('\0')[0];
    if (!source) continue; // the header entry
    pairs.push([source.includes('\u0004') ? source.split('\u0004')[1] : source, target]);
  }
  return pairs;
}

const PLACEHOLDER = /%(\d+\$)?[-+ #0]*\d*(\.\d+)?[hlLqjzt]*[diouxXeEfFgGcsSp%]|\{\w*\}|\$\{\w+\}|%\(\w+\)[sd]|<[^>]+>|&\w+;|\\n|\n|\t/;

function clean(text) {
  return text
    .replace(/_(?=[\p{L}\p{N}])/gu, '') // GTK mnemonic underscores
    .replace(/&(?=[\p{L}\p{N}])/gu, '') // KDE-style accelerators
    .replace(/\s*\(_?[A-Za-z]\)\s*$/u, '') // "(_F)" accelerator hints
    .replace(/\s+/g, ' ')
    .trim();
}

const BENGALI_SCRIPT = /[\u0980-\u09FF]/u;

// One catalogue per package name; a later --dir only adds packages the earlier ones lack.
const files = new Map();
for (const dir of dirs) {
  if (!fs.existsSync(dir)) {
    console.log(`skipping ${dir}: not found`);
    continue;
  }
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (name.endsWith('.mo') && !fs.lstatSync(file).isSymbolicLink() && !files.has(name)) files.set(name, file);
  }
}
const byPackage = new Map();
for (const [name, file] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
  const pkg = name.replace(/\.mo$/, '');
  const rows = [];
  for (const [en, as] of readMo(file)) {
    if (PLACEHOLDER.test(en) || PLACEHOLDER.test(as)) continue;
    const source = clean(as);
    const target = clean(en);
    if (!BENGALI_SCRIPT.test(source) || !/[A-Za-z]/.test(target) || source.length > 200 || target.length > 200) continue;
    rows.push({ prompt: source, response: target, package: pkg });
  }
  byPackage.set(pkg, rows);
}

// Deduplicate by source text across packages (first occurrence wins, packages in name order).
const seen = new Set();
for (const [pkg, rows] of byPackage) byPackage.set(pkg, rows.filter((r) => !seen.has(r.prompt) && seen.add(r.prompt)));

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
