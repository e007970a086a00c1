#!/usr/bin/env node
// Verifiable instructions (sort, reverse, count, format, compute). Each record carries a "check"
// the instruction-checks evaluator applies to the model's output. Sizes: --train, --eval, --test
// (default 50000, 300, 300); no prompt appears twice. Run: node tools/datasets/instructions.cjs
const { Rng, writeSplits } = require('./common.cjs');

// Words for the spelling tasks: enough that reversing, counting and capitalising stay in every split
// of tens of thousands of prompts (with a dozen words every such prompt was used up by training).
const WORDS = `apple river garden planet window silver forest candle rocket yellow market pencil
  anchor animal answer autumn basket battle beach bottle bridge bright bubble butter button cabin
  camera candy carpet castle cattle cheese cherry chicken circle clever cloud coffee collar copper
  corner cotton country cousin cradle crayon credit cricket crystal cupboard curtain daisy dance
  danger desert dinner doctor dollar donkey dragon drawer dream driver eagle earth engine evening
  factory family farmer feather fence field finger flame flower folder forest fountain friend frost
  galaxy garage ginger giraffe glass globe golden grape gravel guitar hammer harbor harvest helmet
  honey horizon horse hunter island jacket jelly jewel jungle kettle kitchen kitten ladder lantern
  lemon letter library light lizard lobster machine magnet mango marble meadow melody mirror monkey
  morning mountain muffin museum napkin needle nephew number ocean office olive onion orange orbit
  oyster paddle palace panda paper parcel parrot pasta peanut pepper piano pickle pillow pirate
  pocket poem potato powder prince puzzle quarter rabbit radio rainbow raven ribbon riddle robin
  saddle salmon sandal saucer scarf school season shadow shelter shovel signal silk singer sister
  sketch slipper smile snake soccer socket spider spoon spring square squirrel stable stamp station
  stone storm stream street sugar summer sunset supper sweater table tablet teacher temple thunder
  ticket tiger timber toast tomato tongue tower tractor travel treasure tulip tunnel turtle umbrella
  valley velvet violin voyage wagon walnut water weather whale whistle winter wizard wolf wonder
  yogurt zebra`
  .split(/\s+/)
  .filter((w, i, all) => w && all.indexOf(w) === i);

// Half the spelling prompts use a made-up word (consonant-vowel syllables): the supply of prompts
// is then unlimited, and a model must learn to spell, not to remember a few hundred answers.
const CONSONANTS = 'bcdfghjklmnprstvwz';
const VOWELS = 'aeiou';
function someWord(rng) {
  if (rng.bernoulli(0.5)) return WORDS[rng.int(WORDS.length)];
  let w = '';
  const syllables = 2 + rng.int(3);
  for (let i = 0; i < syllables; i++) w += CONSONANTS[rng.int(CONSONANTS.length)] + VOWELS[rng.int(VOWELS.length)];
  return rng.bernoulli(0.5) ? w + CONSONANTS[rng.int(CONSONANTS.length)] : w;
}

const TASKS = [
  (rng) => {
    const xs = Array.from({ length: 3 + rng.int(4) }, () => 1 + rng.int(99));
    const desc = rng.bernoulli(0.5);
    const sorted = [...xs].sort((a, b) => (desc ? b - a : a - b)).map(String);
    return {
      prompt: `Sort these numbers in ${desc ? 'descending' : 'ascending'} order, separated by commas: ${xs.join(', ')}`,
      response: sorted.join(', '),
      check: { type: 'list', expected: sorted },
      task: 'sort',
    };
  },
  (rng) => {
    const w = someWord(rng);
    const r = [...w].reverse().join('');
    return { prompt: `Write the word "${w}" backwards.`, response: r, check: { type: 'exact', expected: r }, task: 'reverse' };
  },
  (rng) => {
    const w = someWord(rng);
    const letter = w[rng.int(w.length)];
    const n = [...w].filter((c) => c === letter).length;
    return {
      prompt: `How many times does the letter "${letter}" appear in "${w}"? Answer with a number.`,
      response: String(n),
      check: { type: 'number', expected: n },
      task: 'count',
    };
  },
  (rng) => {
    const w = someWord(rng);
    const upper = rng.bernoulli(0.5);
    const out = upper ? w.toUpperCase() : w[0].toUpperCase() + w.slice(1);
    return {
      prompt: upper ? `Write "${w}" in capital letters.` : `Capitalize the first letter of "${w}".`,
      response: out,
      check: { type: 'exact', expected: out },
      task: 'format',
    };
  },
  (rng) => {
    const a = 2 + rng.int(20);
    const b = 2 + rng.int(9);
    const c = 1 + rng.int(30);
    const value = a * b + c;
    return {
      prompt: `Compute ${a} * ${b} + ${c}. Answer with a number.`,
      response: String(value),
      check: { type: 'number', expected: value },
      task: 'compute',
    };
  },
  (rng) => {
    const y = 2000 + rng.int(30);
    const m = 1 + rng.int(12);
    const d = 1 + rng.int(28);
    const pad = (x) => String(x).padStart(2, '0');
    const out = `${pad(d)}/${pad(m)}/${y}`;
    return { prompt: `Rewrite the date ${y}-${pad(m)}-${pad(d)} as DD/MM/YYYY.`, response: out, check: { type: 'exact', expected: out }, task: 'format-date' };
  },
];

const seed = Number((process.argv.find((a) => a.startsWith('--seed=')) ?? '=2024').split('=')[1]);
const rng = Rng.create(seed).fork('instructions');
const seen = new Set();
const make = (n) => {
  const rows = [];
  while (rows.length < n) {
    const row = TASKS[rng.int(TASKS.length)](rng);
    if (seen.has(row.prompt)) continue;
    seen.add(row.prompt);
    rows.push(row);
  }
  return rows;
};
const arg = (name, fallback) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1]);
// Test and eval are drawn first: the small spaces (a few hundred reverse or capitalise prompts) are
// shared out before training takes what is left, so every task appears in every split.
const test = make(arg('test', 300));
const evalRows = make(arg('eval', 300));
writeSplits('instructions', { train: make(arg('train', 50000)), eval: evalRows, test });
