#!/bin/bash
# Smoke test of the sampling commands with the authors' weights:
#   $1 = wcm CLI, $2 = ../shared. Skips (77) without the weights or images.
# The 320x320 RF-13 cascade (J = 3, low-pass net RF_40x40_low) super-resolves
# one CelebA-HQ test image x8 with a small iteration cap: it must run, record
# the cap in its log, and its output's coarsest low-pass must equal the input
# to 1e-5. Then a 64x64 `sample` and a flat-model `inverse`, both tiny.
set -u
CLI=$1
SHARED=$2
W=$SHARED/weights/kadkhodaie2023/denoisers/multi_scale/celebA_320x320_gray
FLAT=$SHARED/weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_13x13/model.pt
IMG=$SHARED/data/celebahq/test320/000508.png
for f in "$W"/noise_range_0to255_RF_40x40_low/model.pt "$W"/noise_range_0to255_RF_13x13_scale_{0,1,2}/model.pt "$FLAT" "$IMG"; do
    if [ ! -f "$f" ]; then
        echo "SKIP: $f not found"
        exit 77
    fi
done
TMP=$(mktemp -d /tmp/wcm_cli_sampling.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check CONDITION-EXIT-STATUS MESSAGE
    if [ "$1" -eq 0 ]; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi
}
# Width and height of a PNG from its IHDR chunk.
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}'; }
# A number member of a JSON log: json_number FILE KEY
json_number() { grep -o "\"$2\": [-0-9.eE+]*" "$1" | head -1 | awk '{print $2}'; }

"$CLI" help superres >/dev/null 2>&1
check $? "wcm help superres (the sampling commands are registered)"
[ $fail -eq 0 ] || exit 1

"$CLI" bundle -o "$TMP/ms320.safetensors" --low "$W/noise_range_0to255_RF_40x40_low/model.pt" \
    "$W/noise_range_0to255_RF_13x13_scale_0/model.pt" "$W/noise_range_0to255_RF_13x13_scale_1/model.pt" \
    "$W/noise_range_0to255_RF_13x13_scale_2/model.pt" >/dev/null
check $? "bundle the 320x320 RF-13 cascade (J = 3)"

start=$(date +%s)
"$CLI" superres "$TMP/ms320.safetensors" "$IMG" "$TMP/sr.png" --from-highres --max-iters 12 --samples 2 --seed 3 \
    >"$TMP/sr.out" 2>"$TMP/sr.err"
rc=$?
cat "$TMP/sr.out"
check $rc "superres x8 of $(basename "$IMG") (cap 12 per net, 2 samples) exits 0 in $(($(date +%s) - start)) s"
check "$([ "$(png_size "$TMP/sr.png")" = 320x320 ] && echo 0 || echo 1)" "output sr.png is 320x320 ($(png_size "$TMP/sr.png"))"
dev=$(json_number "$TMP/sr_log.json" consistency_max_abs)
check "$(awk -v d="$dev" 'BEGIN{print (d != "" && d <= 1e-5) ? 0 : 1}')" "consistency: max |low-pass(out) - in| = $dev <= 1e-5"
grep -q '"status": "cap"' "$TMP/sr_log.json"
check $? "log records the iteration cap (status cap)"
grep -q "warning: cond0: 2 of 2 samples stopped at the iteration cap (12)" "$TMP/sr.err"
check $? "cap warning on stderr"
grep -q "PSNR vs the reference image: sample 1" "$TMP/sr.out"
check $? "PSNRs printed (sample 1, mean, low-pass only)"
for f in sr_1.png sr_2.png sr_mean.png sr_lowpass.png; do
    [ -f "$TMP/$f" ]
    check $? "wrote $f"
done
grep -o '"seconds_per_iteration": [0-9.e-]*' "$TMP/sr_log.json" | sed 's/^/    cond2, cond1, cond0 /'

"$CLI" --quiet sample "$TMP/ms320.safetensors" --out "$TMP/s" --n 2 --low-size 8 --max-iters 8 >/dev/null 2>"$TMP/s.err"
check $? "sample 2 x 64x64 (low-size 8, cap 8) exits 0"
check "$([ "$(png_size "$TMP/s/sample_001.png")" = 64x64 ] && [ -f "$TMP/s/grid.png" ] && [ -f "$TMP/s/sample_000_scale2.png" ] && echo 0 || echo 1)" \
    "sample wrote 64x64 samples, per-scale images and grid.png"

"$CLI" --quiet inverse "$FLAT" --task superres --factor 8 --from-highres "$IMG" "$TMP/inv.png" --max-iters 3 \
    >"$TMP/inv.out" 2>/dev/null
rc=$?
cat "$TMP/inv.out"
dev=$(json_number "$TMP/inv_log.json" consistency_max_abs)
check "$([ $rc -eq 0 ] && awk -v d="$dev" 'BEGIN{exit !(d != "" && d <= 1e-4)}' && echo 0 || echo 1)" \
    "inverse --task superres x8 with the flat RF-13 net: exit $rc, max |M^T out - x_c| = $dev"

exit $fail
