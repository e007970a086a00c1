#!/usr/bin/env node
// The summarization students' pre-training corpus (the analogue of the paper's pretrained students):
// next-sentence continuation over the package descriptions of the summarization *training* split.
// Each pair is a description's first sentences (the prompt) and the sentence that follows them (the
// response), so the student learns the domain's English and to carry names and terms over from its
// context, without ever seeing a synopsis or the description of an eval or test package. (Source
// packages can share description text, so about 2% of these sentences also occur in some eval or
// test description: an overlap of the summarization split itself, which its training split and
// every model trained on it share.)
// Its own eval and test splits (300 each) are held-out training-split packages, for checking the base.
// Run after tools/datasets/summarization.cjs: node tools/datasets/descriptions.cjs
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { DATA, writeSplits } = require('./common.cjs');

const source = path.join(DATA, 'summarization', 'train.jsonl.gz');
if (!fs.existsSync(source)) {
  console.error(`${path.relative(process.cwd(), source)} is missing: run node tools/datasets/summarization.cjs first`);
  process.exit(2);
}
const documents = zlib
  .gunzipSync(fs.readFileSync(source))
  .toString('utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));

const MAX_PROMPT = 900;
// Sentence ends: a stop and a capital after it, with at least 20 characters since the last end, so
// abbreviations and names ("0 A.D.", "e.g. X") stay inside their sentence.
function sentences(text) {
  const out = [];
  let start = 0;
  for (const m of text.matchAll(/[.!?]\s+(?=[A-Z])/g)) {
    const end = m.index + 1;
    if (end - start < 20) continue;
    out.push(text.slice(start, end).trim());
    start = m.index + m[0].length;
  }
  out.push(text.slice(start).trim());
  return out.filter(Boolean);
}

const pairs = [];
const seen = new Set();
for (const { prompt: text, source: group } of documents) {
  const parts = sentences(text);
  for (let i = 1; i < parts.length; i++) {
    const response = parts[i];
    if (response.length < 15 || response.length > 150) continue;
    let context = parts.slice(0, i);
    while (context.length > 1 && context.join(' ').length > MAX_PROMPT) context = context.slice(1);
    const prompt = context.join(' ');
    if (prompt.length > MAX_PROMPT || seen.has(prompt + response)) continue;
    seen.add(prompt + response);
    pairs.push({ prompt, response, source: group });
  }
}

// Held-out splits by source package (packages of one source share their descriptions' text), with
// the hash salted: unsalted, it is the one that split summarization, whose training buckets start at 10.
const bucket = (group) => createHash('sha256').update(`descriptions:${group}`).digest().readUInt32BE(0) % 100;
const held = (lo, hi) => pairs.filter((p) => bucket(p.source) >= lo && bucket(p.source) < hi).slice(0, 300);
writeSplits('descriptions', {
  train: pairs.filter((p) => bucket(p.source) >= 2),
  eval: held(0, 1),
  test: held(1, 2),
});
