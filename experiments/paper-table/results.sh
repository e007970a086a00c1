#!/usr/bin/env bash
# The paper table's finished runs, kept in the repository: a run folder lives on one machine, and the
# 192 runs take longer than one machine is held, so each finished run is also archived here, and a
# rerun of run.sh on a fresh clone picks up where the last machine stopped. The archives are also
# what docs/results.md's tables were computed from: restore them and run summary.cjs or skd report.
#
#   bash experiments/paper-table/results.sh save [task ...]      archive finished runs not archived yet
#   bash experiments/paper-table/results.sh restore [task ...]   unpack archives whose run is not finished here
#
# TABLE=<name> works on experiments/<name>/results and runs/<name> (default paper-table).
# One archive per run, experiments/paper-table/results/<task>/<run>.tar.gz, written once and never
# rewritten: the run's summary.json and config.json, its metrics.jsonl without the progress lines, and
# the test split's predictions and bootstrap scores (no weights: a few tens of kB a run).
set -euo pipefail
{
cd "$(dirname "$0")/../.."
action=${1:-}
shift || true
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(arithmetic instructions translation summarization)
table=${TABLE:-paper-table}
archives=experiments/$table/results

save() {
  local task=$1 dir name archive staging part
  [ -d "runs/$table/$task" ] || return 0
  mkdir -p "$archives/$task"
  for dir in "runs/$table/$task"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    archive=$archives/$task/$name.tar.gz
    [ -f "$dir/summary.json" ] && [ ! -f "$archive" ] || continue
    staging=$(mktemp -d)
    mkdir -p "$staging/$name/eval"
    cp "$dir/summary.json" "$dir/config.json" "$staging/$name/"
    [ -f "$dir/metrics.jsonl" ] && grep -v '^{"type":"progress"' "$dir/metrics.jsonl" > "$staging/$name/metrics.jsonl" || true
    cp "$dir"/eval/test-* "$staging/$name/eval/" 2> /dev/null || true
    # Fixed names, order, owners and times: the same run always makes the same bytes.
    # Two lanes may save the same run at once: each writes its own part, and the rename is atomic.
    part=$(mktemp "$archive.XXXXXX")
    tar -C "$staging" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$name" | gzip -n -9 > "$part"
    chmod 644 "$part"
    mv "$part" "$archive"
    rm -rf "$staging"
    echo "saved $archive"
  done
}

restore() {
  local task=$1 archive name count=0
  [ -d "$archives/$task" ] || return 0
  mkdir -p "runs/$table/$task"
  for archive in "$archives/$task"/*.tar.gz; do
    [ -f "$archive" ] || continue
    name=$(basename "$archive" .tar.gz)
    [ -f "runs/$table/$task/$name/summary.json" ] && continue
    # A partial run of the same name here is superseded by the finished one.
    rm -rf "runs/$table/$task/$name"
    tar -C "runs/$table/$task" -xzmf "$archive"
    count=$((count + 1))
  done
  echo "$task: $count finished runs restored from $archives/$task"
}

case "$action" in
  save) for task in "${tasks[@]}"; do save "$task"; done ;;
  restore) for task in "${tasks[@]}"; do restore "$task"; done ;;
  *) echo "usage: bash experiments/paper-table/results.sh save|restore [task ...]" >&2; exit 2 ;;
esac
exit
}
