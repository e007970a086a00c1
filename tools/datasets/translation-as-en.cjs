#!/usr/bin/env node
// Assamese -> English parallel corpus from the gettext catalogues Debian installs
// (/usr/share/locale/as/LC_MESSAGES/*.mo, or --dir=...; `apt-get download` more packages and
// extract their .mo files to grow it). Cleans accelerator marks, drops strings with placeholders or
// markup, deduplicates, and splits BY SOURCE PACKAGE so no test string leaks into training.
// Run: node tools/datasets/translation-as-en.cjs
const fs = require('node:fs');
const path = require('node:path');
const { writeSplits } = require('./common.cjs');

const dir = (process.argv.find((a) => a.startsWith('--dir=')) ?? '=/usr/share/locale/as/LC_MESSAGES').split('=')[1];

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

const byPackage = new Map();
for (const name of fs.readdirSync(dir).sort()) {
  const file = path.join(dir, name);
  if (!name.endsWith('.mo') || fs.lstatSync(file).isSymbolicLink()) continue;
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

// Whole packages go to eval and test (no string of theirs appears in training).
const TEST = ['iso_3166-1', 'gdk-pixbuf', 'Linux-PAM'];
const EVAL = ['at-spi2-core', 'gsettings-desktop-schemas', 'xdg-user-dirs', 'iso_3166-3'];
const pick = (names) => names.flatMap((n) => byPackage.get(n) ?? []);
const train = [...byPackage.keys()].filter((n) => !TEST.includes(n) && !EVAL.includes(n)).flatMap((n) => byPackage.get(n));
const sizes = writeSplits('translation-as-en', { train, eval: pick(EVAL), test: pick(TEST) });
console.log(`packages: ${[...byPackage].map(([n, r]) => `${n} ${r.length}`).join(', ')}`);
if (sizes.train < 1000) console.log('warning: fewer than 1000 training pairs');
