# Sourced by nightly.sh and aa.sh: a regression verdict stands only when a second run of
# the same build, compared with the same base, regresses on the same rows.
#
# One run's timings share that run's machine state; on a shared machine a burst of load
# from elsewhere can slow every measurement of a few seconds by 15-50% at once, and no
# tolerance learned from earlier nights covers every such burst without also hiding real
# regressions. A burst does not come back on demand; a regression in the code does. So a
# regression is confirmed by running the suite again: the false alarm has to happen twice,
# on the same metrics, while a real slowdown shows both times.

# The rows of a `flowbench compare` table that regressed, one key a line:
# `scenario/backend/variant metric [params]`.
regressed_rows() {
    awk '/ regressed( \(noisy\))?$/ {
        key = $1 " " $2
        if ($3 ~ /^\[/) key = key " " $3
        print key
    }' "$1" | sort -u
}

# Rows that regressed in both compare tables.
confirmed_rows() {
    comm -12 <(regressed_rows "$1") <(regressed_rows "$2")
}
