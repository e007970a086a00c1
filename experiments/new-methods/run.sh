#!/usr/bin/env bash
# Methods added after the SKD paper's comparison (TAID, MiniLLM), on two cells of the paper table:
# arithmetic with 1000 training examples and instructions with 100, 3 seeds each, from the table's
# committed teachers and students with the table's base configs, budgets and seeds. Then a report that
# pairs them, seed by seed on the same test examples, with the table's SKD and on-policy runs.
#
# Usage: bash experiments/new-methods/run.sh            (resumable: finished runs are skipped)
#   JOBS=2 runs two sweeps at a time, one native thread each, each pinned to its own core.
# Finished runs are archived in experiments/new-methods/results/ (experiments/paper-table/results.sh with
# TABLE=new-methods) and restored first on a fresh clone, as the paper table's are; the table's own runs
# are restored from experiments/paper-table/results/ for the report.
set -euo pipefail
{
cd "$(dirname "$0")/../.."
tasks=(arithmetic instructions)
TABLE=paper-table bash experiments/paper-table/results.sh restore "${tasks[@]}"
TABLE=new-methods bash experiments/paper-table/results.sh restore "${tasks[@]}"
jobs=${JOBS:-1}
lane() {
  local core=$1 task
  local pin=()
  [ "$jobs" -gt 1 ] && command -v taskset > /dev/null && pin=(taskset -c "$core")
  for task in "${tasks[@]}"; do
    SKD_THREADS=1 "${pin[@]}" node packages/cli/dist/main.js sweep "experiments/new-methods/$task.json"
    TABLE=new-methods bash experiments/paper-table/results.sh save "$task"
  done
}
mkdir -p runs/new-methods
lanes=()
for n in $(seq 1 "$jobs"); do
  lane $(((n - 1) % $(nproc))) > "runs/new-methods/lane-$n.log" 2>&1 &
  lanes+=($!)
done
failed=0
for n in $(seq 1 "$jobs"); do wait "${lanes[$((n - 1))]}" || { echo "lane $n failed: runs/new-methods/lane-$n.log"; failed=1; }; done
[ "$failed" = 0 ] || exit 1
for task in "${tasks[@]}"; do
  node packages/cli/dist/main.js report "runs/paper-table/$task" "runs/new-methods/$task" --out "runs/new-methods/report/$task" --paired method=skd
done
node experiments/new-methods/summary.cjs
exit
}
