#!/usr/bin/env bash
# The main job: on one bundled task (default: instructions), distil the committed SFT student from the
# committed SFT teacher (experiments/<task>/models, made by experiments/pretrain.sh) with supervised KD,
# on-policy KD and SKD, and fine-tune it on the references alone (supervised FT: the control, more
# training without the teacher), all under the same budget (experiments/<task>/compare.json);
# evaluate each with greedy decoding on the whole test split, and write the report: the starting student beside each
# method, with 95% bootstrap intervals and paired tests of SKD against the others and against the
# starting student; the teacher is a row too, scored on the same test examples. Interrupted, it
# resumes where it stopped (the sweep skips finished runs, the report reuses its evaluations).
# Usage: bash experiments/compare.sh [instructions|arithmetic]
set -euo pipefail
# Braced and ended by exit: bash reads the whole block before running it, so editing this file
# while a long run is under way cannot change what the run does next.
{
cd "$(dirname "$0")/.."
task=${1:-instructions}
exp=experiments/$task
[ -f "$exp/compare.json" ] || { echo "no main-job sweep for task '$task' (expected $exp/compare.json)" >&2; exit 2; }
skd() { node --single-threaded-gc packages/cli/dist/main.js "$@"; } # V8's collector off the kernels' cores: docs/performance.md
# The runs folder is the sweep's own `out` (relative to the sweep file), so the two cannot disagree.
out=$(node -p 'const p = require("node:path"); p.relative(process.cwd(), p.resolve(process.argv[1], require(p.resolve(process.argv[1], "compare.json")).out))' "$exp")
# The starting student, scored like the runs; a group named baseline-* is tested against in the report.
[ -f "$out/initial/summary.json" ] || { rm -rf "$out/initial"; skd eval "$exp/distill.json" --out "$out/initial" --group baseline-initial-student; }
skd sweep "$exp/compare.json"
skd report "$out" --out "runs/$task/report" --paired method=skd --baseline "$exp/models/teacher"
cat "runs/$task/report/report.md"
echo "charts: runs/$task/report/report.html"
exit
}
