#!/usr/bin/env bash
# Distillation across tokenizers on arithmetic: the sweep arithmetic.json (SFT, ULD, GOLD and SKD across
# tokenizers, 3 seeds), then a report pairing each method with SFT seed by seed on the same test problems,
# and summary.cjs's table (docs/results.md). The student's models are committed; pretrain.sh remakes them.
#
# Usage: bash experiments/cross-tokenizer/run.sh     (resumable: finished runs are skipped)
#   CELL=arithmetic (default) runs arithmetic.json (learning rate 5e-4); CELL=arithmetic-lr1e-4 runs
#   arithmetic-lr1e-4.json (1e-4, chosen on the eval split); CELL=arithmetic-10k-prompts runs
#   arithmetic-10k-prompts.json (the distillation arms draw prompts from 10000 problems, SFT has the
#   1000 references); each into runs/cross-tokenizer/$CELL.
#   Arguments go to skd sweep, e.g. --only method=sft,uld.
#   JOBS=2 (default) trains two runs at a time, one native thread each, through a Redis queue on a
#   loopback port (PORT, default 6391) that this script starts and stops.
# Finished runs are archived in experiments/cross-tokenizer/results/ (experiments/paper-table/results.sh with
# TABLE=cross-tokenizer) and restored first on a fresh clone.
set -euo pipefail
{
cd "$(dirname "$0")/../.."
skd() { node --single-threaded-gc packages/cli/dist/main.js "$@"; } # V8's collector off the kernels' cores: docs/performance.md
cell=${CELL:-arithmetic}
[ -f "experiments/cross-tokenizer/$cell.json" ] || { echo "no sweep experiments/cross-tokenizer/$cell.json" >&2; exit 2; }
TABLE=cross-tokenizer bash experiments/paper-table/results.sh restore "$cell"
port=${PORT:-6391}
queue=redis://127.0.0.1:$port
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no > /tmp/skd-cross-tokenizer-redis.log 2>&1 &
redis=$!
worker=
# The worker first (it hands unfinished runs back to Redis), then Redis.
stop() {
  # The worker exits 130 when stopped: not a failure of the script.
  if [ -n "$worker" ]; then kill "$worker" 2> /dev/null && wait "$worker" 2> /dev/null || true; fi
  kill "$redis" 2> /dev/null || true
  wait 2> /dev/null || true
}
trap stop EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.2; done
mkdir -p runs/cross-tokenizer
# node itself in the background (not the skd function), so that $! is the worker and stop() ends it.
SKD_THREADS=1 node packages/cli/dist/main.js worker --queue "$queue" --concurrency "${JOBS:-2}" > "runs/cross-tokenizer/worker-$cell.log" 2>&1 &
worker=$!
skd sweep "experiments/cross-tokenizer/$cell.json" --queue "$queue" "$@"
# The starting student on the same test problems, for the table's first row.
[ -f runs/cross-tokenizer/starting-student/summary.json ] ||
  SKD_THREADS=1 skd eval experiments/cross-tokenizer/distill.json --out runs/cross-tokenizer/starting-student --group baseline-starting-student
TABLE=cross-tokenizer bash experiments/paper-table/results.sh save "$cell"
skd report "runs/cross-tokenizer/$cell" --out "runs/cross-tokenizer/report-$cell" --paired method=sft
node experiments/cross-tokenizer/summary.cjs runs "$cell"
exit
}
