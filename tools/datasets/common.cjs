// Shared helpers of the dataset builders: seeded randomness (the project's own Rng) and JSONL output.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { Rng } = require('@skd/core');

const DATA = path.resolve(__dirname, '../../data');

/**
 * Writes data/<name>/<split>.jsonl; the training split is gzipped (train.jsonl.gz: tens of thousands
 * of rows, 5-8x smaller in the repository), eval and test stay plain text to read and diff.
 */
function writeSplits(name, splits) {
  const dir = path.join(DATA, name);
  fs.mkdirSync(dir, { recursive: true });
  const sizes = {};
  for (const [split, rows] of Object.entries(splits)) {
    const text = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (split === 'train') {
      fs.writeFileSync(path.join(dir, 'train.jsonl.gz'), zlib.gzipSync(text, { level: 9 }));
      fs.rmSync(path.join(dir, 'train.jsonl'), { force: true });
    } else fs.writeFileSync(path.join(dir, `${split}.jsonl`), text);
    sizes[split] = rows.length;
  }
  console.log(
    `${name}: ${Object.entries(sizes)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')} -> ${path.relative(process.cwd(), dir)}`,
  );
  return sizes;
}

module.exports = { DATA, Rng, writeSplits };
