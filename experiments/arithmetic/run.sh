#!/usr/bin/env bash
# The main job: on the bundled arithmetic task, train a teacher and a smaller student by supervised
# fine-tuning, distil the student with supervised KD, on-policy KD and SKD under the same budget,
# and write a report. Each step resumes if interrupted (the sweep skips finished runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
skd() { node packages/cli/dist/main.js "$@"; }
resume() { [ -f "$1/config.json" ] && echo --resume || true; }
skd train experiments/arithmetic/teacher-sft.json --out runs/arithmetic/teacher $(resume runs/arithmetic/teacher)
skd train experiments/arithmetic/student-sft.json --out runs/arithmetic/student $(resume runs/arithmetic/student)
skd sweep experiments/arithmetic/compare.json
skd report runs/arithmetic/compare --out runs/arithmetic/report
cat runs/arithmetic/report/report.md
