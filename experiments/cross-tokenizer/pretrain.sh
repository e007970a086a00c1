#!/usr/bin/env bash
# Trains the cross-tokenizer experiment's student: its own BPE (tokenizer.json, committed), the
# pre-training on data/arithmetic-small (student-base.json) and the SFT on 1000 arithmetic problems
# (student.json); the models land in experiments/cross-tokenizer/models/{student-base,student-1k}.
# Each step resumes if interrupted; a finished one is skipped. Run folders: runs/cross-tokenizer/pretrain/.
set -euo pipefail
{
cd "$(dirname "$0")/../.."
skd() { node --single-threaded-gc packages/cli/dist/main.js "$@"; } # V8's collector off the kernels' cores: docs/performance.md
exp=experiments/cross-tokenizer
runs=runs/cross-tokenizer/pretrain
train() { local out=$1; shift; if [ -f "$out/summary.json" ]; then echo "$out: done earlier, skipped"; else skd train "$@" --out "$out" $([ -f "$out/config.json" ] && echo --resume); fi; }
install_model() { rm -rf "$2" && mkdir -p "$(dirname "$2")" && cp -r "$1/model" "$2"; }
train "$runs/student-base" "$exp/student-base.json"
install_model "$runs/student-base" "$exp/models/student-base"
train "$runs/student-1k" "$exp/student.json"
install_model "$runs/student-1k" "$exp/models/student-1k"
exit
}
