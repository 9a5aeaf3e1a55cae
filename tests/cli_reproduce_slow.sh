#!/usr/bin/env bash
# wcm reproduce end to end with the authors' .pt files imported on the fly
# (label slow): `filters --quick` and `fig3 --n 1` write report.html,
# results.csv and results.json; the Figure-3 page carries the authors'
# numbers beside wcm's, and the filters' CSV has a row per model, noise level
# and pixel. Skips without ../shared.
set -u
WCM="$1" SHARED="${2:-}"
W="$SHARED/weights/kadkhodaie2023/denoisers"
[ -d "$W" ] && [ -d "$SHARED/data/celeba/test" ] || { echo "SKIP: no $W"; exit 77; }
T=$(mktemp -d /tmp/wcm_cli_reproduce_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }

if "$WCM" --quiet reproduce filters --quick --weights "$W" --data "$SHARED/data" --out "$T/filters" > "$T/out" 2>&1; then
  rows=$(($(wc -l < "$T/filters/results.csv") - 1)); pngs=$(ls "$T/filters"/filters_*.png | wc -l)
  [ "$rows" -eq 24 ] && [ "$pngs" -eq 6 ] && [ -s "$T/filters/report.html" ] && [ -s "$T/filters/results.json" ] \
    && ok "filters --quick: 24 rows (2 models x 3 sigmas x 4 pixels), 6 filter grids, report: $(cat "$T/out")" \
    || bad "filters: $rows rows, $pngs grids"
else bad "filters: $(cat "$T/out")"; fi
if "$WCM" --quiet reproduce fig3 --quick --n 1 --weights "$W" --data "$SHARED/data" --out "$T/fig3" --reference "$SHARED/reference" > "$T/out" 2>&1; then
  curves=$(cut -d, -f1 "$T/fig3/results.csv" | sort -u | grep -vc '^model$')
  authors=$(awk -F, 'NR > 1 && $5 != "" { n++ } END { print n + 0 }' "$T/fig3/results.csv")
  [ "$curves" -eq 15 ] && [ "$authors" -eq 150 ] && grep -q 'class="ref"' "$T/fig3/report.html" && [ -s "$T/fig3/eval/figure3.svg" ] \
    && ok "fig3 --n 1: 15 curves x 10 levels, every one with the authors' number beside it; eval/ page written" \
    || bad "fig3: $curves curves, $authors authors' numbers"
else bad "fig3: $(cat "$T/out")"; fi
echo "cli_reproduce_slow: $checks checks, $fails failures"
[ $fails -eq 0 ]
