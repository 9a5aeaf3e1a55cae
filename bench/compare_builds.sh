#!/bin/bash
# Before/after timing of two builds of wcm on the same machine: runs
# bench_net of build A and of build B in turns (A B A B ...) for ROUNDS
# rounds, keeps each side's best time per case, and prints the table with
# the ratio B/A (above 1: B is slower). Turns, not one side after the other,
# so that a slow stretch of a shared machine hits both alike.
#
# usage: bench/compare_builds.sh BUILD_A BUILD_B [ROUNDS [bench_net options...]]
#   e.g. bench/compare_builds.sh ../base/build build 5 --threads 2
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_A BUILD_B [ROUNDS [bench_net options...]]" >&2
    exit 2
fi
a=$1 b=$2 rounds=${3:-5}
shift $(( $# < 3 ? $# : 3 ))
for d in "$a" "$b"; do
    [ -x "$d/bench/bench_net" ] || { echo "$0: no $d/bench/bench_net (build it first)" >&2; exit 2; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
    for side in a b; do
        dir=$a; [ $side = b ] && dir=$b
        # One round of bench_net, no PyTorch: only the table rows "| case | seconds | ..." are kept.
        "$dir/bench/bench_net" --no-torch --rounds 1 "$@" 2>/dev/null | grep '^| [a-z]' | grep -v '^| case' >> "$out/$side"
        echo "round $r/$rounds: $side done" >&2
    done
done
# Best (smallest) seconds per case on each side, in the order of the first run.
awk -F'|' -v A="$out/a" -v B="$out/b" '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    BEGIN {
        while ((getline line < A) > 0) { split(line, f, "|"); c = trim(f[2]); t = trim(f[3]) + 0;
            if (!(c in besta)) { order[n++] = c; besta[c] = t } else if (t < besta[c]) besta[c] = t }
        while ((getline line < B) > 0) { split(line, f, "|"); c = trim(f[2]); t = trim(f[3]) + 0;
            if (!(c in bestb) || t < bestb[c]) bestb[c] = t }
        printf "| case | A s | B s | B / A |\n|---|---:|---:|---:|\n"
        for (i = 0; i < n; i++) { c = order[i]; printf "| %s | %.4f | %.4f | %.3f |\n", c, besta[c], bestb[c], bestb[c] / besta[c] }
    }'
