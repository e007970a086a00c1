// Shared by the translation builders: reading GNU MO catalogues and cleaning their strings.
const fs = require('node:fs');
const path = require('node:path');

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

/** Assamese and Bengali share this block. */
const BENGALI_SCRIPT = /[\u0980-\u09FF]/u;

/**
 * The catalogues under `dirs`, one per package name in name order; a later dir only adds packages
 * the earlier ones lack. Missing dirs are reported and skipped.
 */
function catalogues(dirs) {
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
  return [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, file]) => ({ pkg: name.replace(/\.mo$/, ''), file }));
}

/**
 * Translation pairs of one catalogue, source language (Bengali script) to English, without
 * placeholders or markup, each side at most 200 characters.
 */
function pairsOf(file, pkg) {
  const rows = [];
  for (const [en, foreign] of readMo(file)) {
    if (PLACEHOLDER.test(en) || PLACEHOLDER.test(foreign)) continue;
    const source = clean(foreign);
    const target = clean(en);
    if (!BENGALI_SCRIPT.test(source) || !/[A-Za-z]/.test(target) || source.length > 200 || target.length > 200) continue;
    rows.push({ prompt: source, response: target, package: pkg });
  }
  return rows;
}

module.exports = { readMo, clean, catalogues, pairsOf };
