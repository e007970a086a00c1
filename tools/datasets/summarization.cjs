#!/usr/bin/env node
// Summarization from Debian package descriptions: the long description is the document, the
// one-line synopsis the summary. The long descriptions live in apt's Translation-en indexes; this
// script fetches them when missing (`apt-get -o Acquire::Languages=en update`, as root) and reads
// them with apt-helper, or reads a file given with --from= (Packages or Translation format).
// Deduplicates, drops very short or very long descriptions, and splits by source-package hash (5%
// test, 5% eval, the rest training). Sizes: --train (default all), --eval, --test (default 300).
// Run: node tools/datasets/summarization.cjs
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const { writeSplits } = require('./common.cjs');

const from = (process.argv.find((a) => a.startsWith('--from=')) ?? '').split('=')[1];
const LISTS = '/var/lib/apt/lists';
const translations = () => (fs.existsSync(LISTS) ? fs.readdirSync(LISTS).filter((f) => /_main_i18n_Translation-en/.test(f)) : []);
if (!from && translations().length === 0) {
  console.log('fetching apt Translation-en indexes (long descriptions)');
  execFileSync('apt-get', ['-qq', '-o', 'Acquire::Languages=en', 'update'], { stdio: 'inherit' });
}
const text = from
  ? fs.readFileSync(from, 'utf8')
  : translations()
      .sort()
      .map((f) => execFileSync('/usr/lib/apt/apt-helper', ['cat-file', `${LISTS}/${f}`], { encoding: 'utf8', maxBuffer: 1 << 30 }))
      .join('\n\n');

function parse(paragraph) {
  const fields = {};
  let current;
  for (const line of paragraph.split('\n')) {
    if (/^\s/.test(line) && current) fields[current] += `\n${line}`;
    else {
      const at = line.indexOf(':');
      if (at < 0) continue;
      current = line.slice(0, at);
      fields[current] = line.slice(at + 1).trim();
    }
  }
  return fields;
}

const rows = [];
const seen = new Set();
for (const paragraph of text.split(/\n\s*\n/)) {
  const f = parse(paragraph);
  const description = f['Description-en'] ?? f.Description;
  if (!f.Package || !description) continue;
  const [synopsis, ...rest] = description.split('\n');
  const document = rest
    .map((l) => l.replace(/^ /, ''))
    .map((l) => (l.trim() === '.' ? '' : l.trim()))
    .join('\n')
    .replace(/\n{2,}/g, '\n\n')
    .replace(/(?<!\n)\n(?!\n)/g, ' ')
    .trim();
  const summary = synopsis.trim();
  if (document.length < 150 || document.length > 1200 || summary.length < 10 || summary.length > 90) continue;
  if (seen.has(document) || seen.has(summary)) continue;
  seen.add(document);
  seen.add(summary);
  const source = (f.Source ?? f.Package).split(' ')[0];
  rows.push({ prompt: document, response: summary, package: f.Package, source });
}
rows.sort((a, b) => a.package.localeCompare(b.package));

const bucket = (source) => createHash('sha256').update(source).digest().readUInt32BE(0) % 100;
const size = (name, fallback) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1]);
const test = rows.filter((r) => bucket(r.source) < 5).slice(0, size('test', 300));
const evalRows = rows.filter((r) => bucket(r.source) >= 5 && bucket(r.source) < 10).slice(0, size('eval', 300));
const train = rows.filter((r) => bucket(r.source) >= 10).slice(0, size('train', Infinity));
writeSplits('summarization', { train, eval: evalRows, test });
