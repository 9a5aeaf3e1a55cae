#!/usr/bin/env bash
# Bad input for denoise and eval-denoise: unreadable and truncated images,
# 16-bit and palette PNGs (which must work), an image smaller than the crop,
# a folder with non-image files (skipped and counted), models of the wrong
# kind for the flag. Errors: one line, non-zero exit, no output file.
set -u
WCM="$1"
T=$(mktemp -d /tmp/wcm_denoise_errors_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok()   { checks=$((checks+1)); echo "ok   $*"; }
bad()  { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }

"$WCM" --version >/dev/null || { echo "no wcm"; exit 1; }
# Write a constant 0.5 float32 (H, W) .npy without Python.
python_free_npy() {
  local f=$1 h=$2 w=$3
  local hdr="{'descr': '<f4', 'fortran_order': False, 'shape': ($h, $w), }"
  local total=$((10 + ${#hdr} + 1)); local pad=$(( (64 - total % 64) % 64 ))
  hdr="$hdr$(printf '%*s' $pad '')"
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#hdr}+1) & 255 )))\\x$(printf %02x $(( (${#hdr}+1) >> 8 )))"
    printf '%s\n' "$hdr"
    # 0.5 as float32 little-endian = 00 00 00 3f
    for ((i = 0; i < h * w; i++)); do printf '\x00\x00\x00\x3f'; done; } > "$f"
}
python_free_npy "$T/img32.npy" 32 32

expect_fail() { # expect_fail LABEL OUTFILE ARGS...
  local label=$1 out=$2; shift 2
  "$WCM" "$@" > "$T/stdout" 2> "$T/stderr"; local rc=$?
  local lines; lines=$(wc -l < "$T/stderr")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && [ ! -e "$out" ] && ! ls "$out".*tmp* >/dev/null 2>&1; then
    ok "$label: exit $rc: $(cat "$T/stderr")"
  else
    bad "$label: exit $rc, $lines stderr lines, output exists: $([ -e "$out" ] && echo yes || echo no): $(cat "$T/stderr")"
  fi
}
expect_ok() { # expect_ok LABEL ARGS...
  local label=$1; shift
  if "$WCM" "$@" > "$T/stdout" 2> "$T/stderr"; then ok "$label: $(head -c 200 "$T/stdout" | tr '\n' ' ')"; else bad "$label: $(cat "$T/stderr")"; fi
}

# Models: a flat net and a lone conditional net after one training step.
mkdir -p "$T/data"
for i in 1 2 3 4; do cp "$T/img32.npy" "$T/data/im$i.npy"; done
"$WCM" train --kind flat --rf 5 --data "$T/data" --crop 32 --batch 2 --steps 1 --no-cache -o "$T/flat.safetensors" --quiet >/dev/null 2>&1 \
  || { echo "could not make a test model"; exit 1; }
"$WCM" train --kind conditional --rf 5 --levels 1 --data "$T/data" --crop 32 --batch 2 --steps 1 --no-cache -o "$T/cond.safetensors" --quiet >/dev/null 2>&1 \
  || { echo "could not make a conditional test model"; exit 1; }

printf 'this is not an image' > "$T/fake.png"
expect_fail "unreadable image (text named .png)" "$T/out1.png" denoise "$T/flat.safetensors" "$T/fake.png" "$T/out1.png"
expect_fail "missing image" "$T/out2.png" denoise "$T/flat.safetensors" "$T/nope.png" "$T/out2.png"
# A valid PNG from wcm itself, then truncated.
"$WCM" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/valid.png" >/dev/null 2>&1
head -c 60 "$T/valid.png" > "$T/trunc.png"
expect_fail "truncated PNG" "$T/out3.png" denoise "$T/flat.safetensors" "$T/trunc.png" "$T/out3.png"
expect_fail "lone conditional net cannot denoise" "$T/out4.png" denoise "$T/cond.safetensors" "$T/img32.npy" "$T/out4.png"
expect_fail "--lowpass-only with a flat model" "$T/out5.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/out5.png" --lowpass-only
expect_fail "negative sigma" "$T/out6.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/out6.png" --sigma -3
expect_ok "16-bit PNG output and input" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/d16.png" --bits 16
expect_ok "16-bit PNG read back" denoise "$T/flat.safetensors" "$T/d16.png" "$T/d16b.png" --sigma 10 --clean "$T/d16.png"

# eval-denoise
mkdir -p "$T/mixed" "$T/small" "$T/empty"
cp "$T/img32.npy" "$T/mixed/a.npy"; cp "$T/img32.npy" "$T/mixed/b.npy"; echo notes > "$T/mixed/readme.txt"; mkdir "$T/mixed/sub"
python_free_npy "$T/small/tiny.npy" 8 8
expect_ok "folder with non-image files (skipped and counted)" eval-denoise --images "$T/mixed" --crop 32 --sigmas 25 --out "$T/ev" "$T/flat.safetensors"
grep -q "skipped 2 non-image" "$T/stderr" && ok "skipped entries reported: $(grep skipped "$T/stderr")" || bad "skipped entries not reported: $(cat "$T/stderr")"
expect_fail "image smaller than the crop" "$T/ev2" eval-denoise --quiet --images "$T/small" --crop 32 --out "$T/ev2" "$T/flat.safetensors"
expect_fail "empty folder" "$T/ev3" eval-denoise --images "$T/empty" --crop 32 --out "$T/ev3" "$T/flat.safetensors"
expect_fail "lone conditional model in eval" "$T/ev4" eval-denoise --images "$T/mixed" --crop 32 --out "$T/ev4" "$T/cond.safetensors"
expect_fail "bad --sigmas" "$T/ev5" eval-denoise --images "$T/mixed" --crop 32 --sigmas 1,x --out "$T/ev5" "$T/flat.safetensors"

echo "cli_denoise_errors: $checks passed, $fails failed" | sed "s/$checks passed/$((checks-fails)) passed/"
[ $fails -eq 0 ]
