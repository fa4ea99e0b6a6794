#!/usr/bin/env bash
# A/A check of the regression gate: runs the same build RUNS times, one "night" after
# another, and gates each run against the one before it exactly as nightly.sh does
# (`compare --fail-on-regression --history` with the history of the runs before it).
# Every comparison after the first WARM runs (which only build up the history) counts;
# any non-zero exit is an alarm: a regression verdict (3) is a false alarm, and an
# incomplete comparison (1) or a failed run (flowbench run exits 4) means the series
# itself broke. Each is written to summary.txt as what it is.
#
#   ci/aa.sh                                  # 25 runs, default scenarios, --quick
#   RUNS=25 WARM=5 ci/aa.sh serde foreach     # choose the scenarios
#
# Output, under $AA_DIR (default target/flowbench/aa/): runs/<n>/results.json,
# history.jsonl, compare-<n>.txt and summary.txt with one line per comparison.
# Exit status: 0 when no counted comparison raised an alarm, 3 otherwise.
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

# shellcheck source=confirm.sh
source "$root/ci/confirm.sh"
cargo build --release -p harness --bin flowbench -p orchestrator --bin orchestrator
flowbench="$root/target/release/flowbench"
rm -rf "$out"
mkdir -p "$out/runs"

alarms=0
for ((n = 0; n < runs; n++)); do
    # The history as it stood before this run, as nightly.sh's compare sees it.
    cp "$out/history.jsonl" "$out/history-before-$n.jsonl" 2>/dev/null || : > "$out/history-before-$n.jsonl"
    run_status=0
    "$flowbench" run "${scenarios[@]}" --quick --out "$out/runs/$n" \
        --history "$out/history.jsonl" 2> "$out/runs/run-$n.log" || run_status=$?
    counted=$([[ $n -ge $warm ]] && echo counted || echo warm-up)
    # One alarm per counted run at most: a failed run also makes its compare exit 1.
    alarm=0
    if [[ $run_status -ne 0 ]]; then
        echo "run $n ($counted): flowbench run FAILED, exit $run_status (see runs/run-$n.log)" \
            | tee -a "$out/summary.txt"
        grep -E 'FAILED' "$out/runs/run-$n.log" | tee -a "$out/summary.txt" || true
        alarm=1
        if [[ ! -f "$out/runs/$n/results.json" ]]; then
            echo "no results.json for run $n: stopping the series" | tee -a "$out/summary.txt"
            exit 1
        fi
    fi
    if ((n == 0)); then
        continue
    fi
    status=0
    "$flowbench" compare "$out/runs/$((n - 1))/results.json" "$out/runs/$n/results.json" \
        --fail-on-regression --history "$out/history-before-$n.jsonl" \
        > "$out/compare-$n.txt" 2>&1 || status=$?
    if [[ $status -eq 3 ]]; then
        # As nightly.sh does: a regression stands only if a second run regresses on the
        # same rows (ci/confirm.sh).
        "$flowbench" run "${scenarios[@]}" --quick --out "$out/runs/$n-confirm" \
            2> "$out/runs/run-$n-confirm.log" || true
        "$flowbench" compare "$out/runs/$((n - 1))/results.json" "$out/runs/$n-confirm/results.json" \
            --fail-on-regression --history "$out/history-before-$n.jsonl" \
            > "$out/compare-$n-confirm.txt" 2>&1 || true
        confirmed=$(confirmed_rows "$out/compare-$n.txt" "$out/compare-$n-confirm.txt")
        if [[ -z $confirmed ]]; then
            echo "run $n: $(regressed_rows "$out/compare-$n.txt" | wc -l) regressed row(s) not confirmed by a second run" \
                | tee -a "$out/summary.txt"
            status=0
        fi
    fi
    line="run $n vs $((n - 1)) ($counted): exit $status; $(grep -E '^[0-9]+ compared' "$out/compare-$n.txt" || true)"
    echo "$line" | tee -a "$out/summary.txt"
    if [[ $status -ne 0 ]]; then
        alarm=1
        grep -E 'regressed|failed|missing|insufficient samples|NOTHING COMPARED' "$out/compare-$n.txt" \
            | grep -v '^[0-9]* compared' | tee -a "$out/summary.txt" || true
    fi
    if [[ $alarm -ne 0 && $counted == counted ]]; then
        alarms=$((alarms + 1))
    fi
done
echo "$((runs - warm)) counted A/A comparisons, $alarms with an alarm (non-zero exit of run or compare)" \
    | tee -a "$out/summary.txt"
[[ $alarms -eq 0 ]] || exit 3
