#!/usr/bin/env bash
# Issue 27 through the CLI, one check per defect an attack found: images
# smaller than 2^J (D1: invalid free), outputs that are symlinks, FIFOs,
# directories or device nodes (D5), signals during a checkpoint write and
# temporaries left by SIGKILL (D6), reading a FIFO (D9), the pixel budget
# (D10), huge --crop (D11) and the smaller items of D12. Every refusal: one
# line on stderr, exit 1 (or 2 for usage), no output file, no temporary.
set -u
WCM="$1"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
MS="$SRC/models/wcm_face160_j2_rf13.safetensors" # multi-scale, J = 2
T=$(mktemp -d /tmp/wcm_hardening_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }
temporaries() { compgen -G "$1/*tmp*" | wc -l; }

"$WCM" --version >/dev/null || { echo "no wcm"; exit 1; }
# write_npy FILE H W HEX: a float32 (H, W) .npy, every value the 4 little-endian bytes HEX.
write_npy() {
  local f=$1 h=$2 w=$3 v=$4
  local hdr="{'descr': '<f4', 'fortran_order': False, 'shape': ($h, $w), }"
  local total=$((10 + ${#hdr} + 1)); local pad=$(( (64 - total % 64) % 64 ))
  hdr="$hdr$(printf '%*s' $pad '')"
  local one; one=$(printf '\\x%s\\x%s\\x%s\\x%s' "${v:0:2}" "${v:2:2}" "${v:4:2}" "${v:6:2}")
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#hdr}+1) & 255 )))\\x$(printf %02x $(( (${#hdr}+1) >> 8 )))"
    printf '%s\n' "$hdr"
    for ((i = 0; i < h * w; i++)); do printf "$one"; done; } > "$f"
}
HALF=0000003f HUGE=e6b1617f # 0.5 and 3e38

# expect_fail LABEL OUTPUT ARGS...: exit 1 or 2, one stderr line, OUTPUT absent, no temporary.
expect_fail() {
  local label=$1 out=$2; shift 2
  timeout 60 "$WCM" "$@" > "$T/stdout" 2> "$T/stderr"; local rc=$?
  local lines; lines=$(wc -l < "$T/stderr")
  if [ $rc -ge 1 ] && [ $rc -le 2 ] && [ "$lines" -eq 1 ] && [ ! -e "$out" ] && [ "$(temporaries "$(dirname "$out")")" -eq 0 ]; then
    ok "$label: exit $rc: $(cat "$T/stderr")"
  else
    bad "$label: exit $rc, $lines stderr lines, output exists: $([ -e "$out" ] && echo yes || echo no): $(head -c 600 "$T/stderr")"
  fi
}
grep_stderr() { # grep_stderr LABEL PATTERN
  if grep -q -- "$2" "$T/stderr"; then ok "$1"; else bad "$1: '$2' not in: $(cat "$T/stderr")"; fi
}

mkdir -p "$T/data"
for i in 1 2 3 4; do write_npy "$T/data/im$i.npy" 32 32 $HALF; done
write_npy "$T/img32.npy" 32 32 $HALF
"$WCM" train --kind flat --rf 5 --data "$T/data" --crop 32 --batch 2 --steps 1 --no-cache -o "$T/flat.safetensors" --quiet >/dev/null 2>&1 \
  || { echo "could not make a test model"; exit 1; }

# D1: a multi-scale model and images smaller than 2^J (a double free / SIGBUS before).
write_npy "$T/one.npy" 1 1 $HALF
write_npy "$T/three5.npy" 3 5 $HALF
# Now padded by symmetric reflection to 4x4 and cropped back: outputs of the input's size.
for d1 in "one 1 1" "three5 3 5"; do
  set -- $d1
  if timeout 60 "$WCM" denoise "$MS" "$T/$1.npy" "$T/d1_$1.npy" > "$T/stdout" 2> "$T/stderr" &&
     head -c 128 "$T/d1_$1.npy" | grep -aq "'shape': ($2, $3)"; then
    ok "D1 $3x$2 image, 2-scale model: padded, output $3x$2: $(cat "$T/stderr")"
  else
    bad "D1 $3x$2 image, 2-scale model: $(cat "$T/stderr")"
  fi
done
expect_fail "D1 --clean image smaller than the input" "$T/d1c.png" denoise "$MS" "$T/img32.npy" "$T/d1c.png" --clean "$T/one.npy"

# D5: the output path is a symlink, a FIFO, a directory, a device node.
echo precious > "$T/victim.txt"; ln -s victim.txt "$T/link.png"
expect_fail "D5 -o a symlink" "$T/none.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/link.png"
[ -L "$T/link.png" ] && [ "$(cat "$T/victim.txt")" = precious ] && ok "D5 symlink and its target unchanged" || bad "D5 symlink replaced or target written"
mkfifo "$T/fifo.png"
expect_fail "D5 -o a FIFO" "$T/none.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/fifo.png"
[ -p "$T/fifo.png" ] && ok "D5 the FIFO is still a FIFO" || bad "D5 the FIFO was replaced"
mkdir "$T/dir.png"
expect_fail "D5 -o a directory" "$T/none.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/dir.png"
if mknod "$T/null.png" c 1 3 2>/dev/null; then
  expect_fail "D5 -o a device node (what -o /dev/null is as root)" "$T/none.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/null.png"
  [ -c "$T/null.png" ] && ok "D5 the device node is still a character device" || bad "D5 the device node was replaced"
else
  echo "skip: D5 device node (needs root)"
fi

# D6: a signal while a checkpoint is being written. Freeze the writer the
# moment its temporary exists, signal it, let it run: the handler removes the
# temporary. SIGKILL cannot be handled: the next process writing into the
# folder removes what it left.
write_then() { # write_then SIGNAL DIR: returns once SIGNAL was sent while a temporary existed (or after 60 s)
  local sig=$1 d=$2 pid caught=0
  mkdir -p "$d"
  set -m # started under job control: background jobs of a script ignore SIGINT otherwise
  "$WCM" train --kind flat --rf 13 --data "$T/data" --crop 32 --batch 2 --epochs 100000 --save-every 1 --no-cache \
    --quiet --threads 1 -o "$d/m.safetensors" > /dev/null 2>&1 &
  pid=$!
  set +m # and waited for without it: wait then reports the exit, not the SIGSTOP below
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ] && kill -0 $pid 2>/dev/null; do
    if [ "$(temporaries "$d")" -gt 0 ]; then
      kill -STOP $pid
      if [ "$(temporaries "$d")" -gt 0 ]; then caught=1; break; fi
      kill -CONT $pid
    fi
  done
  kill -"$sig" $pid; kill -CONT $pid 2>/dev/null
  wait $pid 2>/dev/null; WRITE_RC=$?
  WRITE_CAUGHT=$caught
}
for sig in INT TERM; do
  write_then $sig "$T/sig$sig"
  n=$(temporaries "$T/sig$sig")
  if [ $WRITE_CAUGHT -eq 1 ] && [ $WRITE_RC -eq $((128 + $(kill -l $sig))) ] && [ "$n" -eq 0 ]; then
    ok "D6 SIG$sig during a checkpoint write: killed by the signal (exit $WRITE_RC), no temporary left"
  else
    bad "D6 SIG$sig during a checkpoint write: caught $WRITE_CAUGHT, exit $WRITE_RC, $n temporaries left: $(ls "$T/sig$sig")"
  fi
done
write_then KILL "$T/sigKILL"
n=$(temporaries "$T/sigKILL")
[ $WRITE_CAUGHT -eq 1 ] && [ "$n" -eq 1 ] && ok "D6 SIGKILL during a write leaves its temporary" || bad "D6 SIGKILL: caught $WRITE_CAUGHT, $n temporaries"
"$WCM" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/sigKILL/later.png" > /dev/null 2>&1
n=$(temporaries "$T/sigKILL")
[ "$n" -eq 0 ] && ok "D6 the next run writing into that folder removes it" || bad "D6 stale temporary still there: $(ls "$T/sigKILL")"

# D9: a FIFO as input must not block.
mkfifo "$T/model.safetensors"
expect_fail "D9 wcm info on a FIFO" "$T/none" info "$T/model.safetensors"
grep_stderr "D9 says why" "not a regular file"

# D10: the pixel budget, before decoding and before network activations.
expect_fail "D10 a 32x32 image over --max-pixels 1000" "$T/d10a.png" --max-pixels 1000 denoise "$T/flat.safetensors" "$T/img32.npy" "$T/d10a.png"
grep_stderr "D10 names the budget" "pixel budget of 1000"
"$WCM" denoise --max-pixels=1024 "$T/flat.safetensors" "$T/img32.npy" "$T/d10b.png" > /dev/null 2>&1 && [ -f "$T/d10b.png" ] \
  && ok "D10 --max-pixels 1024 admits 32x32" || bad "D10 --max-pixels 1024 refused 32x32"
write_npy "$T/low20.npy" 20 20 $HALF
expect_fail "D10 superres output (80x80) over --max-pixels 5000, refused before sampling" "$T/d10c.png" --max-pixels 5000 superres "$MS" "$T/low20.npy" "$T/d10c.png"
expect_fail "D10 sample --size 16384 --n 4 (2^30 pixels) refused before allocating" "$T/smp/grid.png" sample "$MS" --out "$T/smp" --size 16384 --n 4
expect_fail "D10 --max-pixels 0 is a usage error" "$T/none" --max-pixels 0 info "$MS"

# D11: a crop whose tensor size wraps.
expect_fail "D11 eval-denoise --crop 1073741824" "$T/ev11" eval-denoise --images "$T/data" --crop 1073741824 --out "$T/ev11" "$T/flat.safetensors"

# D12, the smaller items.
expect_fail "D12 forward to f.png (wrote .npy bytes)" "$T/f.png" forward "$T/flat.safetensors" "$T/img32.npy" "$T/f.png"
expect_fail "D12 train --resize 100000 (said '4 unreadable')" "$T/r.safetensors" train --kind flat --rf 5 --data "$T/data" --crop 32 --resize 100000 --steps 1 --no-cache -o "$T/r.safetensors"
grep_stderr "D12 --resize names the problem" "resize 100000 is larger"
# A crop not divisible by 2^J = 4 (a read after free before, then refused): padded and cropped back now.
if timeout 120 "$WCM" eval-denoise --images "$T/data" --crop 30 --out "$T/ev12" "$MS" > "$T/stdout" 2> "$T/stderr" &&
   [ -s "$T/ev12/results.csv" ]; then
  ok "D12 eval --crop 30 with J = 2: padded, results.csv written"
else
  bad "D12 eval --crop 30 with J = 2: $(cat "$T/stderr")"
fi
long="$T/$(printf 'dir/%.0s' $(seq 1 400))model.safetensors"
expect_fail "D12 a 1.6 KB path" "$T/none" info "$long"
grep_stderr "D12 the reason survives the long path" "No such file or directory"
expect_fail "D12 train --test-fraction nan" "$T/t.safetensors" train --kind flat --rf 5 --data "$T/data" --crop 32 --steps 1 --no-cache --test-fraction nan -o "$T/t.safetensors"
expect_fail "D12 train --minutes -1" "$T/t.safetensors" train --kind flat --rf 5 --data "$T/data" --crop 32 --steps 1 --no-cache --minutes -1 -o "$T/t.safetensors"
echo x > "$T/plain.txt"
expect_fail "D12 train --cache under a file" "$T/t.safetensors" train --kind flat --rf 5 --data "$T/data" --crop 32 --steps 1 --cache "$T/plain.txt/cache" -o "$T/t.safetensors"
expect_fail "D12 denoise --sigma 1e308 (PSNR -inf, exit 0 before)" "$T/s.png" denoise "$T/flat.safetensors" "$T/img32.npy" "$T/s.png" --sigma 1e308
write_npy "$T/huge.npy" 8 8 $HUGE
expect_fail "D12 superres of 3e38 values (said ok, deviation inf)" "$T/sr.png" superres "$MS" "$T/huge.npy" "$T/sr.png" --max-iters 3 --quiet
# MODEL:NET picks one network of a multi-scale model (bundle, train --init); a missing one is refused by name.
"$WCM" bundle -o "$T/rebundled.safetensors" --low "$MS:low" "$MS:0" "$MS:1" --quiet > /dev/null 2>&1
G="$SRC/docs/gallery/face160_0.png"
"$WCM" denoise "$MS" "$G" "$T/a.png" --sigma 25 --quiet > /dev/null &&
  "$WCM" denoise "$T/rebundled.safetensors" "$G" "$T/b.png" --sigma 25 --quiet > /dev/null
if cmp -s "$T/a.png" "$T/b.png"; then ok "bundle MODEL:low MODEL:0 MODEL:1 rebuilds the model (denoised images identical)"
else bad "bundle of MODEL:NET parts denoises differently"; fi
rm -f "$T/a.png" "$T/b.png"
mkdir -p "$T/tiny" && for k in 1 2 3 4; do write_npy "$T/tiny/$k.npy" 16 16 0000003f; done
if "$WCM" train --kind conditional --rf 13 --levels 2 --scale 0 --data "$T/tiny" --crop 0 --no-cache --batch 2 --steps 1 \
     --batch-norm frozen --init "$MS:0" -o "$T/ft.safetensors" 2>&1 | grep -q "initialised from $MS:0"; then
  ok "train --init MODEL:0 starts from the model's finest conditional net"
else bad "train --init MODEL:0"; fi
rm -f "$T"/ft.*
expect_fail "bundle of a network the model lacks" "$T/bad.safetensors" bundle -o "$T/bad.safetensors" --low "$MS:low" "$MS:0" "$MS:5"
[ "$(temporaries "$T")" -eq 0 ] && ok "no temporary anywhere in the test folder" || bad "temporaries left: $(ls "$T" | grep tmp)"

echo "cli_hardening: $((checks-fails)) passed, $fails failed"
[ $fails -eq 0 ]
