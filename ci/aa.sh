#!/usr/bin/env bash
# A/A check of the regression gate: runs the same build RUNS times, one "night" after
# another, and gates each run against the one before it exactly as nightly.sh does
# (`compare --fail-on-regression --history` with the history of the runs before it).
# Every comparison after the first WARM runs (which only build up the history) counts;
# any regression verdict is a false alarm.
#
#   ci/aa.sh                                  # 25 runs, default scenarios, --quick
#   RUNS=25 WARM=5 ci/aa.sh serde foreach     # choose the scenarios
#
# Output, under $AA_DIR (default target/flowbench/aa/): runs/<n>/results.json,
# history.jsonl, compare-<n>.txt and summary.txt with one line per comparison.
# Exit status: 0 when no comparison regressed, 3 otherwise.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-25}
warm=${WARM:-5}
out=${AA_DIR:-$root/target/flowbench/aa}
scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(serde json-mapping worker-mutation log-heavy foreach)
fi

cargo build --release -p harness --bin flowbench
flowbench="$root/target/release/flowbench"
rm -rf "$out"
mkdir -p "$out/runs"

alarms=0
for ((n = 0; n < runs; n++)); do
    # The history as it stood before this run, as nightly.sh's compare sees it.
    cp "$out/history.jsonl" "$out/history-before-$n.jsonl" 2>/dev/null || : > "$out/history-before-$n.jsonl"
    "$flowbench" run "${scenarios[@]}" --quick --out "$out/runs/$n" \
        --history "$out/history.jsonl" 2> "$out/runs/run-$n.log"
    if ((n == 0)); then
        continue
    fi
    status=0
    "$flowbench" compare "$out/runs/$((n - 1))/results.json" "$out/runs/$n/results.json" \
        --fail-on-regression --history "$out/history-before-$n.jsonl" \
        > "$out/compare-$n.txt" || status=$?
    counted=$([[ $n -ge $warm ]] && echo counted || echo warm-up)
    line="run $n vs $((n - 1)) ($counted): exit $status; $(grep -E '^[0-9]+ compared' "$out/compare-$n.txt")"
    echo "$line" | tee -a "$out/summary.txt"
    if [[ $status -ne 0 && $counted == counted ]]; then
        alarms=$((alarms + 1))
        grep -E 'regressed|head failed|missing' "$out/compare-$n.txt" | grep -v '^[0-9]* compared' \
            | tee -a "$out/summary.txt" || true
    fi
done
echo "$((runs - warm)) counted A/A comparisons, $alarms with a regression verdict" | tee -a "$out/summary.txt"
[[ $alarms -eq 0 ]] || exit 3
