#!/usr/bin/env bash
# The main job: on the bundled arithmetic task, train a teacher and a smaller student by supervised
# fine-tuning, distil the student with SKD, and write a report. Each step resumes if interrupted.
set -euo pipefail
cd "$(dirname "$0")/../.."
skd() { node packages/cli/dist/main.js "$@"; }
resume() { [ -f "$1/config.json" ] && echo --resume || true; }
skd train experiments/arithmetic/teacher-sft.json --out runs/arithmetic/teacher $(resume runs/arithmetic/teacher)
skd train experiments/arithmetic/student-sft.json --out runs/arithmetic/student $(resume runs/arithmetic/student)
skd distill experiments/arithmetic/skd.json --out runs/arithmetic/skd $(resume runs/arithmetic/skd)
skd report runs/arithmetic --out runs/arithmetic/report
cat runs/arithmetic/report/report.md
