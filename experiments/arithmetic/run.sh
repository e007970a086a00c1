#!/usr/bin/env bash
# The main job: on the bundled arithmetic task, distil the committed SFT student from the committed
# SFT teacher (experiments/arithmetic/models, made by experiments/pretrain.sh) with supervised KD,
# on-policy KD and SKD under the same budget, evaluate each with greedy decoding on the whole test
# split, and write the report: the starting student beside each method, with 95% bootstrap intervals
# and paired tests of SKD against the others and against the starting student; the teacher is a row
# too, scored on the same test problems. Interrupted, it resumes where it stopped (the sweep skips
# finished runs, the report reuses its evaluations).
set -euo pipefail
cd "$(dirname "$0")/../.."
skd() { node packages/cli/dist/main.js "$@"; }
out=runs/arithmetic/compare
# The starting student, scored like the runs; a group named baseline-* is tested against in the report.
[ -f "$out/initial/summary.json" ] || { rm -rf "$out/initial"; skd eval experiments/arithmetic/distill.json --out "$out/initial" --group baseline-initial-student; }
skd sweep experiments/arithmetic/compare.json
skd report "$out" --out runs/arithmetic/report --paired method=skd --baseline experiments/arithmetic/models/teacher
cat runs/arithmetic/report/report.md
echo "charts: runs/arithmetic/report/report.html"
