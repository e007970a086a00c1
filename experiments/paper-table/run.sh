#!/usr/bin/env bash
# The miniature paper table: supervised FT, supervised KD, SeqKD, on-policy KD, GKD, ImitKD, DistiLLM
# and SKD on the four bundled tasks, with 1000 and 100 training examples, 3 seeds each (192 runs),
# from the committed teachers and students in experiments/<task>/models. Then the report.
#
# Usage: bash experiments/paper-table/run.sh [task ...]        (default: all four tasks)
#   JOBS=2 runs two runs at a time, one native thread each (SKD_THREADS=1; faster on small models than one run
#   on two threads): two `skd sweep` lanes over the same sweeps, each taking the next run the other does not
#   hold, logs in runs/paper-table/lane-<n>.log. Interrupt it at any time: a rerun skips finished runs and
#   resumes the others.
#   TABLE=paper-official runs the table at the SKD authors' settings (experiments/paper-official/) the same way.
#   FIRST="method=on-policy,skd" runs those runs of every task first (skd sweep --only), then the rest: when
#   a session may end before the table does, the comparisons that matter most are finished first.
#   ONLY="method=skd data=1k" runs only the runs every filter keeps (each word one skd sweep --only filter);
#   the sweeps' other runs are left for later.
# Each finished run is also archived in experiments/paper-table/results/ (results.sh), and a rerun on
# another machine restores those first: commit them to carry the table across machines.
# Runs go to runs/paper-table/<task>/, beside the teacher's and the initial students' evaluations on
# the same test examples (skd eval --out); the report (per-task tables with 95% intervals, paired tests
# of SKD against every other method, acceptance over training, charts) to runs/paper-table/report/,
# and the compact method x task table to report/summary.md.
set -euo pipefail
# Braced and ended by exit: bash reads the whole block before running it, so editing this file
# while a long run is under way cannot change what the run does next.
{
cd "$(dirname "$0")/../.."
# TABLE names another table laid out like this one (experiments/<TABLE>/<task>.json, runs/<TABLE>/).
table=${TABLE:-paper-table}
[ -d "experiments/$table" ] || { echo "no such table: experiments/$table" >&2; exit 2; }
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(arithmetic instructions translation summarization)
for task in "${tasks[@]}"; do
  [ -f "experiments/$table/$task.json" ] || { echo "no such task: $task" >&2; exit 2; }
  [ -f "experiments/$task/models/teacher/config.json" ] || { echo "experiments/$task/models/teacher is missing: run bash experiments/pretrain.sh $task" >&2; exit 2; }
done
# Runs another machine finished and archived (results.sh): restored, so they are skipped below.
bash experiments/paper-table/results.sh restore "${tasks[@]}"
# The starting points, evaluated once per task with the sweep's base config (its data, evaluators and stop
# strings): the teacher, and the SFT students before distillation.
baseOf() { node -e 'const path = require("path"); const file = process.argv[1]; console.log(path.join(path.dirname(file), require(path.resolve(file)).base))' "experiments/$table/$1.json"; }
# (--set paths resolve from the current directory: the model folders are named from the base's folder.)
evaluate() { local base; base=$(baseOf "$1"); [ -f "$2/summary.json" ] || { rm -rf "$2"; node packages/cli/dist/main.js eval "$base" --set "student.options.path=$(dirname "$base")/$3" --set "dataset.options.limit=$4" --out "$2" --group "$5" > /dev/null; }; }
for task in "${tasks[@]}"; do
  out=runs/$table/$task
  evaluate "$task" "$out/teacher" models/teacher 1000 teacher
  evaluate "$task" "$out/method-initial__data-1k" models/student-1k 1000 method-initial__data-1k
  evaluate "$task" "$out/method-initial__data-100" models/student-100 100 method-initial__data-100
  echo "$task: teacher and initial students evaluated"
done
jobs=${JOBS:-1}
only=()
for filter in ${ONLY:-}; do only+=(--only "$filter"); done
if [ "$jobs" -gt 1 ]; then
  # JOBS lanes over the same sweeps, one thread each: every lane takes the next run no other lane
  # holds (its folder's run.lock), so all lanes stay busy until the last run, whatever the tasks cost.
  # With no more lanes than cores, lane n runs on core n alone (taskset, where util-linux has it): its
  # helper threads (V8's compiler and collector) then never take the other lanes' cores.
  mkdir -p runs/$table
  cores=$(nproc)
  lanes=()
  for lane in $(seq 1 "$jobs"); do
    pin=()
    [ "$jobs" -le "$cores" ] && command -v taskset > /dev/null && pin=(taskset -c $(((lane - 1) % cores)))
    ( if [ -n "${FIRST:-}" ]; then
        for task in "${tasks[@]}"; do SKD_THREADS=1 "${pin[@]}" node packages/cli/dist/main.js sweep "experiments/$table/$task.json" --only "$FIRST" || exit 1; bash experiments/paper-table/results.sh save "$task"; done
      fi
      for task in "${tasks[@]}"; do SKD_THREADS=1 "${pin[@]}" node packages/cli/dist/main.js sweep "experiments/$table/$task.json" "${only[@]}" || exit 1; bash experiments/paper-table/results.sh save "$task"; done ) > "runs/$table/lane-$lane.log" 2>&1 &
    lanes+=($!)
  done
  failed=0
  for lane in $(seq 1 "$jobs"); do
    if wait "${lanes[$((lane - 1))]}"; then echo "lane $lane: done"; else echo "lane $lane: failed, see runs/$table/lane-$lane.log"; failed=1; fi
  done
  [ "$failed" = 0 ] || exit 1
else
  [ -z "${FIRST:-}" ] || for task in "${tasks[@]}"; do node packages/cli/dist/main.js sweep "experiments/$table/$task.json" --only "$FIRST"; bash experiments/paper-table/results.sh save "$task"; done
  for task in "${tasks[@]}"; do node packages/cli/dist/main.js sweep "experiments/$table/$task.json" "${only[@]}"; bash experiments/paper-table/results.sh save "$task"; done
fi
reported=()
for task in arithmetic instructions translation summarization; do [ -d "runs/$table/$task" ] && reported+=("runs/$table/$task"); done
node packages/cli/dist/main.js report "${reported[@]}" --out runs/$table/report --paired method=skd
node experiments/paper-table/summary.cjs runs/$table | tee runs/$table/report/summary.md
exit
}
