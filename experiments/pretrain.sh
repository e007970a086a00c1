#!/usr/bin/env bash
# Trains the committed checkpoints of one or more tasks: the teacher by supervised fine-tuning on the
# whole training split; where the task has a student-base.json, the students' pre-training on a
# related corpus (models/student-base); then the initial student by a short SFT on 1000 and on 100 training examples
# (student.json's steps on 1000, 100 steps on 100: about 16 epochs, as longer only memorises the 100).
# Models land in experiments/<task>/models/{teacher,student-1k,student-100}.
# Usage: bash experiments/pretrain.sh [arithmetic|instructions|translation|summarization ...]
# Each step resumes if interrupted (run it again; a finished step is skipped), so the teachers can
# be trained in parts across sessions; run folders go to runs/pretrain/<task>/. Teachers take 40-80
# minutes each on a 2-core machine (docs/results.md lists the measured times).
set -euo pipefail
# The body is read whole before it runs (braces), so editing this file mid-run cannot change a running job.
{
cd "$(dirname "$0")/.."
skd() { node --single-threaded-gc packages/cli/dist/main.js "$@"; } # V8's collector off the kernels' cores: docs/performance.md
resume() { [ -f "$1/config.json" ] && echo --resume || true; }
# A run folder with summary.json is finished: skip it rather than resume it.
train() { local out=$1; shift; if [ -f "$out/summary.json" ]; then echo "$out: done earlier, skipped"; else skd train "$@" --out "$out" $(resume "$out"); fi; }
# Wall time of a run across all its parts: each step's seconds over the run's history (steps replayed
# after a resume counted once; evaluations are not steps, so they are left out).
took() {
  node -e '
    const fs = require("node:fs");
    const { readRunEvents, runHistory } = require("@skd/trainer");
    const [dir, name] = process.argv.slice(1);
    const s = JSON.parse(fs.readFileSync(`${dir}/summary.json`, "utf8"));
    const steps = runHistory(readRunEvents(`${dir}/metrics.jsonl`)).filter((e) => e.type === "step");
    const minutes = steps.reduce((t, e) => t + e.seconds, 0) / 60;
    console.log(`${name}: ${s.steps} steps, ${minutes.toFixed(1)} min of training steps, test ${JSON.stringify(s.finalMetrics)}`);
  ' "$PWD/$1" "$2"
}
install_model() { rm -rf "$2" && mkdir -p "$(dirname "$2")" && cp -r "$1/model" "$2"; }
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(arithmetic instructions translation summarization)
for task in "${tasks[@]}"; do
  exp=experiments/$task
  [ -f "$exp/teacher.json" ] || { echo "no such task: $task (expected $exp/teacher.json)" >&2; exit 2; }
  runs=runs/pretrain/$task
  train "$runs/teacher" "$exp/teacher.json"
  install_model "$runs/teacher" "$exp/models/teacher"
  took "$runs/teacher" "$task teacher"
  if [ -f "$exp/student-base.json" ]; then
    train "$runs/student-base" "$exp/student-base.json"
    install_model "$runs/student-base" "$exp/models/student-base"
    took "$runs/student-base" "$task student-base"
  fi
  for size in 1000 100; do
    if [ "$size" = 1000 ]; then name=student-1k steps=$(node -p "require(\"./$exp/student.json\").training.steps"); else name=student-100 steps=100; fi
    train "$runs/$name" "$exp/student.json" --set "dataset.options.limit=$size" --set "training.steps=$steps"
    install_model "$runs/$name" "$exp/models/$name"
    took "$runs/$name" "$task $name"
  done
done
exit
}
