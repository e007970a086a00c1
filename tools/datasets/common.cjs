// Shared helpers of the dataset builders: seeded randomness (the project's own Rng) and JSONL output.
const fs = require('node:fs');
const path = require('node:path');
const { Rng } = require('@skd/core');

const DATA = path.resolve(__dirname, '../../data');

function writeSplits(name, splits) {
  const dir = path.join(DATA, name);
  fs.mkdirSync(dir, { recursive: true });
  const sizes = {};
  for (const [split, rows] of Object.entries(splits)) {
    fs.writeFileSync(path.join(dir, `${split}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    sizes[split] = rows.length;
  }
  console.log(`${name}: ${Object.entries(sizes).map(([s, n]) => `${s} ${n}`).join(', ')} -> ${path.relative(process.cwd(), dir)}`);
  return sizes;
}

module.exports = { DATA, Rng, writeSplits };
