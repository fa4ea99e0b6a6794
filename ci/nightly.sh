#!/usr/bin/env bash
# Nightly regression run: build, run the suite on every reachable database, compare
# with the last green night, gate, append to the history, render the report.
#
#   ci/nightly.sh                 # full suite
#   QUICK=1 ci/nightly.sh         # the --quick suite (minutes instead of an hour)
#
# State kept between nights (see ci/README.md), under $FLOWBENCH_STATE (default
# ci-state/ at the workspace root):
#   baseline.json        the last night that passed the gate
#   history.jsonl        one line of medians per night, appended, never rewritten
#   runs/<stamp>/        results.json, compare.txt and report/ of each night
#
# Exit status: 0 nothing regressed and nothing failed; 3 a regression; 1 an incomplete
# comparison (a scenario or metric failed, skipped or missing on one side, nothing
# compared, too few samples) or an error; 4 a scenario failed in a night with no baseline
# to compare with; anything else: the run itself failed. A night whose run fails
# (`flowbench run` exits 4) is still compared and reported, so its table shows what broke.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=${FLOWBENCH_STATE:-$root/ci-state}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
run_dir="$state/runs/$stamp"
mkdir -p "$run_dir"

# shellcheck source=confirm.sh
source "$root/ci/confirm.sh"
cargo build --release -p harness --bin flowbench -p orchestrator --bin orchestrator
flowbench="$root/target/release/flowbench"

# SQLite always; PostgreSQL and MariaDB/MySQL from the environment, else the project
# machines' local services. A database that does not answer is recorded as skipped by
# `flowbench run`, so it shows in the report instead of failing the night.
dbs=(--db sqlite)
dbs+=(--db "${FLOWBENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}")
dbs+=(--db "${FLOWBENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}")
if [[ -n "${FLOWBENCH_MSSQL_URL:-}" ]]; then
    dbs+=(--db "$FLOWBENCH_MSSQL_URL")
fi
quick=()
if [[ -n "${QUICK:-}" ]]; then
    quick=(--quick)
fi

# A failed scenario (exit 4) still writes results.json: go on, compare and report, and
# fail the night at the end. Without results.json (an error before the run) stop here.
run_status=0
"$flowbench" run "${dbs[@]}" "${quick[@]}" --out "$run_dir" --history "$state/history.jsonl" \
    || run_status=$?
if [[ ! -f "$run_dir/results.json" ]]; then
    echo "flowbench run wrote no results (exit $run_status)" >&2
    exit "$((run_status == 0 ? 1 : run_status))"
fi
if [[ $run_status -ne 0 ]]; then
    echo "flowbench run exited $run_status: a scenario failed or the run was interrupted" \
        | tee "$run_dir/run-failed.txt"
fi

status=0
if [[ -f "$state/baseline.json" ]]; then
    "$flowbench" compare "$state/baseline.json" "$run_dir/results.json" --fail-on-regression \
        --history "$state/history.jsonl" \
        | tee "$run_dir/compare.txt" || status=${PIPESTATUS[0]}
elif [[ $run_status -eq 0 ]]; then
    echo "no baseline yet: this night becomes the first one" | tee "$run_dir/compare.txt"
else
    echo "no baseline yet, and this night's run failed: it does not become the baseline" \
        | tee "$run_dir/compare.txt"
fi

if [[ $status -eq 3 ]]; then
    # A regression stands only if a second run of the same build regresses on the same
    # rows (ci/confirm.sh); the second run is not added to the history.
    echo "regression: confirming with a second run" | tee -a "$run_dir/compare.txt"
    "$flowbench" run "${dbs[@]}" "${quick[@]}" --out "$run_dir/confirm" || true
    "$flowbench" compare "$state/baseline.json" "$run_dir/confirm/results.json" \
        --fail-on-regression --history "$state/history.jsonl" \
        > "$run_dir/compare-confirm.txt" 2>&1 || true
    confirmed=$(confirmed_rows "$run_dir/compare.txt" "$run_dir/compare-confirm.txt")
    if [[ -n $confirmed ]]; then
        { echo "confirmed by the second run:"; echo "$confirmed"; } | tee -a "$run_dir/compare.txt"
    else
        echo "not confirmed by the second run: no regression tonight" | tee -a "$run_dir/compare.txt"
        status=0
        # A night that needed confirming ran in unusual conditions: keep the old baseline.
        unconfirmed=1
    fi
fi

"$flowbench" report "$run_dir/results.json" --history "$state/history.jsonl" --out "$run_dir/report"

# The baseline moves only on a night whose run and gate both passed, so a regression keeps
# being reported until it is fixed (or the baseline is moved on purpose, see ci/README.md),
# and a night with a failed scenario never becomes the baseline.
if [[ $status -eq 0 && $run_status -eq 0 && -z ${unconfirmed:-} ]]; then
    cp "$run_dir/results.json" "$state/baseline.json"
fi
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "$run_dir/report/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
if [[ $status -ne 0 ]]; then
    exit "$status"
fi
exit "$run_status"
