#!/usr/bin/env bash
# The main job: on the bundled arithmetic task, distil the committed SFT student from the committed
# SFT teacher (experiments/arithmetic/models, made by experiments/pretrain.sh) with supervised KD,
# on-policy KD and SKD under the same budget, evaluate each with greedy decoding on the test split,
# and write the report. Interrupted, it resumes where it stopped (the sweep skips finished runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
skd() { node packages/cli/dist/main.js "$@"; }
skd sweep experiments/arithmetic/compare.json
skd report runs/arithmetic/compare --out runs/arithmetic/report
cat runs/arithmetic/report/report.md
echo "charts: runs/arithmetic/report/report.html"
