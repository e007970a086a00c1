#!/usr/bin/env bash
# Proves the kd-method generator end to end (run by CI after the tests): generate a method, link it,
# build, lint and test the new package and the composition root, and select it from a config with
# `skd check`. The work tree is restored on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=ci-probe
touched=(packages/config/src/registry.ts packages/config/package.json docs/paper-index.md package-lock.json)
if ! git diff --quiet -- "${touched[@]}"; then
  echo "check-kd-method: ${touched[*]} have uncommitted changes; commit them first (the check restores these files from git)" >&2
  exit 1
fi
restore() {
  git checkout -- "${touched[@]}" 2>/dev/null || true
  rm -rf "packages/method-$name" "node_modules/@skd/method-$name"
  # The composition root was built against the probe: rebuild it from the restored sources.
  npx nx run config:build --outputStyle=static >/dev/null 2>&1 || echo "check-kd-method: rebuild config with: npx nx run config:build" >&2
}
trap restore EXIT
export NX_DAEMON=false NX_NO_CLOUD=true
npx nx g ./tools:kd-method "$name" --paper="generator check" --no-interactive
npm install --no-audit --no-fund >/dev/null
npx nx run-many -t build,typecheck,lint,test -p "method-$name" config --outputStyle=static --skip-nx-cache
checked=$(node packages/cli/dist/main.js check experiments/smoke.json --set backend=cpu --set "sampler={\"kind\":\"$name\",\"options\":{\"temperature\":0.7}}")
grep -q "sampler    $name" <<< "$checked"
echo "kd-method generator: 1 passed, 0 failed (generated, built, tested and selected from a config)"
