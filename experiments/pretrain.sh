#!/usr/bin/env bash
# Trains the committed checkpoints of one or more tasks: the teacher by supervised fine-tuning on the
# whole training split, then the initial student by a short SFT on 1000 and on 100 training examples
# (300 steps on 1000, 100 steps on 100: about 5 and 16 epochs, as longer only memorises the 100). Models land in experiments/<task>/models/{teacher,student-1k,student-100}.
# Usage: bash experiments/pretrain.sh [arithmetic|instructions|translation|summarization ...]
# Each step resumes if interrupted; run folders go to runs/pretrain/<task>/.
set -euo pipefail
cd "$(dirname "$0")/.."
skd() { node packages/cli/dist/main.js "$@"; }
resume() { [ -f "$1/config.json" ] && echo --resume || true; }
install_model() { rm -rf "$2" && mkdir -p "$(dirname "$2")" && cp -r "$1/model" "$2"; }
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(arithmetic instructions translation summarization)
for task in "${tasks[@]}"; do
  exp=experiments/$task
  [ -f "$exp/teacher.json" ] || { echo "no such task: $task (expected $exp/teacher.json)" >&2; exit 2; }
  runs=runs/pretrain/$task
  skd train "$exp/teacher.json" --out "$runs/teacher" $(resume "$runs/teacher")
  install_model "$runs/teacher" "$exp/models/teacher"
  for size in 1000 100; do
    if [ "$size" = 1000 ]; then name=student-1k steps=300; else name=student-100 steps=100; fi
    skd train "$exp/student.json" --out "$runs/$name" --set "dataset.options.limit=$size" --set "training.steps=$steps" $(resume "$runs/$name")
    install_model "$runs/$name" "$exp/models/$name"
  done
done
