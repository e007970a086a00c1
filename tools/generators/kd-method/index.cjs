// `npx nx g ./tools:kd-method <name>`: scaffolds a new KD method as its own package,
// packages/method-<name>, with a working sampler (on-policy sampling at a temperature, to be
// changed), its strict options schema and registry entry, a statistical test against the closed
// form, and a docs entry; then registers the entry in @skd/config so a config selects it by kind.
const path = require('node:path');
const { generateFiles, names, updateJson } = require('@nx/devkit');

function insertAfter(tree, file, marker, line) {
  const text = tree.read(file, 'utf-8');
  if (!text.includes(marker)) throw new Error(`${file} has no "${marker}" marker`);
  if (text.includes(line)) return;
  tree.write(file, text.replace(marker, `${marker}\n${line}`));
}

module.exports = async function kdMethodGenerator(tree, options) {
  const n = names(options.name);
  const kind = n.fileName;
  const root = `packages/method-${kind}`;
  if (tree.exists(root)) throw new Error(`${root} already exists; choose another name`);
  if (!/^[a-z][a-z0-9-]*$/.test(kind)) throw new Error(`method names are lowercase words joined by "-", got "${options.name}"`);
  const vars = { kind, className: n.className, propertyName: n.propertyName, paper: options.paper ?? 'your paper', tmpl: '' };
  generateFiles(tree, path.join(__dirname, 'files'), root, vars);

  const registry = 'packages/config/src/registry.ts';
  insertAfter(tree, registry, '// @skd-generator:imports', `import { ${n.propertyName}Entry } from '@skd/method-${kind}';`);
  insertAfter(tree, registry, '  // @skd-generator:entries', `  ${n.propertyName}Entry,`);
  updateJson(tree, 'packages/config/package.json', (json) => ({ ...json, dependencies: { ...json.dependencies, [`@skd/method-${kind}`]: '*' } }));

  const docs = 'docs/paper-index.md';
  if (tree.exists(docs)) {
    const text = tree.read(docs, 'utf-8');
    const section = '\n## Methods added with the generator\n\n| method | paper | config |\n|---|---|---|\n';
    tree.write(
      docs,
      (text.includes(section.trim()) ? text : text.trimEnd() + '\n' + section) +
        `| ${kind} | ${vars.paper} | \`"sampler": { "kind": "${kind}" }\` (packages/method-${kind}) |\n`,
    );
  }
  return () => {
    console.log(`\nNext: npm install (links @skd/method-${kind}), then npx nx run-many -t build,test -p method-${kind} config`);
    console.log(`Select it in a config with "sampler": { "kind": "${kind}" }. Walkthrough: docs/adding-a-kd-method.md`);
  };
};
