#!/usr/bin/env bash
# wcm jacobian and wcm reproduce from the command line: rows of the authors'
# flat RF 5 net and their shape, homogeneity as printed by the report, the
# whole Jacobian of a 12x12 input with the low-pass net (its rows equal the
# single-row mode's, byte for byte in the .npy), the figure and the report;
# refusals (64+ pixels with --full, a pixel outside the image, --lowpass-only
# on a flat model) leave no output; `reproduce --list` and its errors. The
# parts that need the authors' weights skip without ../shared.
set -u
WCM="$1" SHARED="${2:-}"
T=$(mktemp -d /tmp/wcm_cli_jacobian_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }

n=$("$WCM" reproduce --list | wc -l)
[ "$n" -eq 5 ] && ok "reproduce --list names 5 experiments" || bad "reproduce --list printed $n lines"
"$WCM" reproduce nosuch --weights "$T" --data "$T" --out "$T/r1" 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && [ ! -e "$T/r1" ] && ok "unknown experiment refused: $(cat "$T/err")" || bad "unknown experiment: exit $rc"
"$WCM" reproduce filters --weights "$T/none" --data "$T/none" --out "$T/r2" 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && [ ! -e "$T/r2" ] && [ "$(wc -l < "$T/err")" -eq 1 ] && ok "missing data: one line, no report: $(cat "$T/err")" \
  || bad "missing data: exit $rc, $(cat "$T/err")"

W="$SHARED/weights/kadkhodaie2023/denoisers"
FLAT="$W/flat/celebA_160x160_gray/noise_range_0to255_RF_5x5/model.pt"
LOW="$W/multi_scale/celebA_160x160_gray/noise_range_0to255_RF_40x40_low/model.pt"
if [ ! -f "$FLAT" ] || [ ! -f "$LOW" ]; then
  echo "cli_jacobian: $checks checks, $fails failures (no ../shared: the weight checks skipped)"
  [ $fails -eq 0 ] && exit 77 || exit 1
fi
# The input: a 12x12 float32 .npy (1,1,12,12) written byte by byte, a
# checker of 3x3 blocks of 0.25 and 0.75.
{
  hdr="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 12, 12), }"
  total=$((10 + ${#hdr} + 1)); pad=$(( (64 - total % 64) % 64 )); hdr="$hdr$(printf '%*s' $pad '')"
  printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#hdr}+1) & 255 )))\\x00"; printf '%s\n' "$hdr"
  # float32 0.25 is 00 00 80 3e, 0.75 is 00 00 40 3f
  for ((i = 0; i < 12; i++)); do for ((j = 0; j < 12; j++)); do
    if [ $(( (i / 3 + j / 3) % 2 )) -eq 0 ]; then printf '\x00\x00\x80\x3e'; else printf '\x00\x00\x40\x3f'; fi; done; done
} > "$T/in.npy"

if "$WCM" jacobian "$FLAT" "$T/in.npy" -o "$T/rows.npy" --pixels "5,6;0,0;11,11" --residual > "$T/out" 2>&1 \
   && [ -s "$T/rows.png" ] && [ -s "$T/rows.txt" ] && head -c 128 "$T/rows.npy" | grep -q "(3, 12, 12)"; then
  ok "flat RF 5 --residual: 3 rows of shape (3, 12, 12), PNG and report written"
else bad "flat rows: $(cat "$T/out")"; fi
# Homogeneity as the report prints it: value and sum J*y agree to 5 decimals.
if awk '/value/ { if ($5 != $8) bad = 1; n++ } END { exit !(n == 3 && !bad) }' "$T/rows.txt"; then
  ok "report: D(y)[p] = sum_k J[p,k] y_k for the 3 rows"
else bad "report homogeneity: $(cat "$T/rows.txt")"; fi
if "$WCM" jacobian "$LOW" "$T/in.npy" -o "$T/full.npy" --full --pixels "5,6;0,0;11,11" > "$T/out" 2>&1 \
   && "$WCM" jacobian "$LOW" "$T/in.npy" -o "$T/three.npy" --pixels "5,6;0,0;11,11" > /dev/null 2>&1 \
   && [ -s "$T/full_eigenvalues.npy" ] && grep -q "trace (effective dimensionality)" "$T/full.txt"; then
  off=$(( $(head -c 10 "$T/full.npy" | od -An -tu1 -j8 -N1) + 10 ))  # data offset (header length < 256)
  off3=$(( $(head -c 10 "$T/three.npy" | od -An -tu1 -j8 -N1) + 10 ))
  row() { dd if="$1" bs=1 skip=$(( $2 + $3 * 576 )) count=576 2>/dev/null | od -An -tx1; }
  if [ "$(row "$T/full.npy" $off 66)" = "$(row "$T/three.npy" $off3 0)" ] && [ "$(row "$T/full.npy" $off 143)" = "$(row "$T/three.npy" $off3 2)" ]; then
    ok "low-pass net --full on 12x12: rows 66 and 143 equal the single-row mode's byte for byte; $(grep trace "$T/full.txt" | cut -c1-90)"
  else bad "--full rows differ from the single-row mode"; fi
else bad "--full: $(cat "$T/out")"; fi
expect_fail() { # LABEL OUT ARGS...
  local label=$1 out=$2; shift 2
  "$WCM" "$@" > /dev/null 2> "$T/err"; local rc=$?
  if [ $rc -ne 0 ] && [ ! -e "$out" ] && [ "$(wc -l < "$T/err")" -eq 1 ]; then ok "$label: $(cat "$T/err")"
  else bad "$label: exit $rc, output $( [ -e "$out" ] && echo exists || echo absent): $(cat "$T/err")"; fi
}
expect_fail "pixel outside the image" "$T/o1.npy" jacobian "$FLAT" "$T/in.npy" -o "$T/o1.npy" --pixels "12,0"
expect_fail "--lowpass-only on a flat model" "$T/o2.npy" jacobian "$FLAT" "$T/in.npy" -o "$T/o2.npy" --pixels "1,1" --lowpass-only
expect_fail "--pixels malformed" "$T/o3.npy" jacobian "$FLAT" "$T/in.npy" -o "$T/o3.npy" --pixels "1;2"
echo "cli_jacobian: $checks checks, $fails failures"
[ $fails -eq 0 ]
