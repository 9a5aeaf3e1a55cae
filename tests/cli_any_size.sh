#!/usr/bin/env bash
# Any size and any number of images through the CLI: denoise, superres
# --from-highres and eval-denoise keep odd sizes (481x321 and others) by
# padding; denoising with a tiny --memory (exact tiles) writes the same bytes
# as one pass; a folder of mixed images (sizes, gray and colour, PNG and
# JPEG, one corrupt, one truncated) is denoised with every valid image
# written, the bad ones reported, listed in summary.csv and left without
# output or temporary. Needs ../shared (BSD68 and CelebA images).
set -u
WCM="$1"; SHARED="${2:-}"
[ -d "$SHARED/data/natural/BSD68" ] && [ -d "$SHARED/data/celeba/test" ] || { echo "SKIP: no $SHARED/data"; exit 77; }
MS="$(dirname "$0")/../models/wcm_face160_j2_rf13.safetensors"
T=$(mktemp -d /tmp/wcm_any_size_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }
# npy_shape FILE: the shape in a .npy header, e.g. "(481, 321)".
npy_shape() { head -c 128 "$1" | grep -ao "'shape': ([0-9, ]*)" | sed "s/'shape': //"; }
# png_size FILE: "WxH" from the IHDR chunk.
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $3*256+$4, $7*256+$8}'; }

BSD="$SHARED/data/natural/BSD68"
"$WCM" denoise "$MS" "$BSD/test001.png" "$T/d.npy" --sigma 25 > "$T/out" 2> "$T/err" \
  && [ "$(npy_shape "$T/d.npy")" = "(481, 321)" ] \
  && ok "denoise 481x321 (2^J = 4): output $(npy_shape "$T/d.npy"), $(cat "$T/out")" \
  || bad "denoise 481x321: $(npy_shape "$T/d.npy" 2>/dev/null) $(cat "$T/err")"
"$WCM" denoise "$MS" "$BSD/test001.png" "$T/d_tiled.npy" --sigma 25 --memory 16 > "$T/out" 2> "$T/err" \
  && cmp -s "$T/d.npy" "$T/d_tiled.npy" \
  && ok "denoise 481x321 with --memory 16 (exact tiles): the same bytes as one pass" \
  || bad "denoise --memory 16 differs or failed: $(cat "$T/err")"
"$WCM" denoise "$MS" "$BSD/test001.png" "$T/d.png" --log "$T/d.json" > /dev/null 2>&1 \
  && [ "$(png_size "$T/d.png")" = "321x481" ] && grep -q '"padding": {"bottom": 3, "right": 3}' "$T/d.json" \
  && ok "denoise 481x321 PNG: $(png_size "$T/d.png"), padding in the log" \
  || bad "denoise PNG $(png_size "$T/d.png" 2>/dev/null) / log: $(cat "$T/d.json" 2>/dev/null | head -c 300)"
"$WCM" superres "$MS" "$BSD/test002.png" "$T/s.npy" --from-highres --max-iters 2 --range 0,0 > "$T/out" 2> "$T/err" \
  && [ "$(npy_shape "$T/s.npy")" = "(481, 321)" ] && grep -q '"padding": {"bottom": 3, "right": 3}' "$T/s_log.json" \
  && ok "superres --from-highres 481x321: output $(npy_shape "$T/s.npy"), padding in the log" \
  || bad "superres --from-highres 481x321: $(npy_shape "$T/s.npy" 2>/dev/null) $(tail -n 2 "$T/err")"
mkdir -p "$T/eval"; cp "$BSD/test001.png" "$BSD/test002.png" "$T/eval/"
"$WCM" eval-denoise --images "$T/eval" --n 2 --crop 161 --sigmas 25 --out "$T/ev" "$MS" > "$T/out" 2> "$T/err" && [ -s "$T/ev/results.csv" ] \
  && ok "eval-denoise --crop 161 (odd, 2^J = 4): results.csv" || bad "eval-denoise --crop 161: $(cat "$T/err")"

# A folder of mixed images.
IN="$T/mixed"; mkdir -p "$IN"
cp "$BSD/test001.png" "$IN/a_bsd481.png"; cp "$SHARED/data/natural/Set12/01.png" "$IN/b_set256.png"
n=0; for f in $(ls "$SHARED/data/celeba/test" | head -3); do n=$((n+1)); cp "$SHARED/data/celeba/test/$f" "$IN/c_face$n.jpg"; done
printf 'not an image' > "$IN/d_corrupt.png"
head -c 300 "$IN/c_face1.jpg" > "$IN/e_truncated.jpg"
"$WCM" denoise "$MS" "$IN" "$T/den" --sigma 25 > "$T/out" 2> "$T/err"; rc=$?
valid="a_bsd481 b_set256 c_face1 c_face2 c_face3"
all_out=1; for v in $valid; do [ -s "$T/den/$v.png" ] || all_out=0; done
rows=$(($(wc -l < "$T/den/summary.csv") - 1))
if [ $rc -eq 1 ] && [ $all_out -eq 1 ] && [ ! -e "$T/den/d_corrupt.png" ] && [ ! -e "$T/den/e_truncated.png" ] &&
   [ "$rows" -eq 7 ] && [ "$(grep -c ',ok$' "$T/den/summary.csv")" -eq 5 ] && [ "$(grep -c 'skipping' "$T/err")" -eq 2 ] &&
   [ -z "$(ls -a "$T/den" | grep -i tmp)" ] && [ "$(png_size "$T/den/a_bsd481.png")" = "321x481" ]; then
  ok "folder of 7 (2 gray PNG, 3 colour JPEG, 1 corrupt, 1 truncated): 5 written, 2 reported and listed, exit 1, no temporaries"
else
  bad "folder: exit $rc, all valid written $all_out, $rows rows: $(cat "$T/err" | tail -n 4)"
fi
grep -q "colour image" "$T/err" && ok "the colour default is stated: $(grep 'colour image' "$T/err")" || bad "colour default not stated"
color_png=$(od -An -tu1 -j25 -N1 "$T/den/c_face1.png" | tr -d ' ')
[ "$color_png" = "2" ] && ok "colour JPEG in, colour PNG out (colour type 2)" || bad "colour output type $color_png"
echo "$checks checks, $fails failures"
[ $fails -eq 0 ]
