#!/bin/bash
# wcm sample, superres, eval-denoise and denoise under mpirun (2 ranks) write
# the same bytes as one process: every sample PNG, the grid, superres's
# outputs and mean, the Figure-3 results and example images, and a folder's
# denoised images with its summary (timings aside).
#   $1 = wcm CLI. Skips (77) without mpirun or in a build without MPI. Uses
# the authors' face model shipped in models/ with a small iteration cap (the
# samples are rough; only their identity matters here).
set -u
CLI=$1
MODEL=$(dirname "$0")/../models/kadkhodaie2023_face160_j2_rf13.safetensors
command -v mpirun > /dev/null 2>&1 || { echo "SKIP: no mpirun on PATH"; exit 77; }
ldd "$CLI" 2>/dev/null | grep -q libmpi || { echo "SKIP: wcm was built without MPI"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
TMP=$(mktemp -d /tmp/wcm_cli_mpi.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
MPI="mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1"
fail=0
check() { if [ "$1" = 0 ]; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi; }
same_files() { # $1 = pattern dir 1, $2 = dir 2: every file of the one-process run, byte for byte
    local n=0 bad=0
    for f in "$1"/*.png; do n=$((n + 1)); cmp -s "$f" "$2/$(basename "$f")" || bad=$((bad + 1)); done
    echo "$n files, $bad differ"
    [ $n -gt 0 ] && [ $bad = 0 ]
}
OPTS="--n 5 --low-size 5 --seed 7 --max-iters 40 --quiet"
OMP_NUM_THREADS=2 "$CLI" sample "$MODEL" $OPTS --out "$TMP/one" > /dev/null 2>&1
$MPI "$CLI" sample "$MODEL" $OPTS --out "$TMP/two" > "$TMP/two.log" 2>&1
r=$(same_files "$TMP/one" "$TMP/two"); s=$?
check $s "sample --n 5 on 2 ranks = 1 process ($r; sample_*, per-scale images, grid.png)"
cp "$TMP/one/sample_000.png" "$TMP/in.png"
SR="--samples 3 --seed 5 --max-iters 40 --quiet"
mkdir -p "$TMP/s1" "$TMP/s2"
OMP_NUM_THREADS=2 "$CLI" superres "$MODEL" "$TMP/in.png" "$TMP/s1/out.png" --from-highres $SR > "$TMP/s1.log" 2>&1
$MPI "$CLI" superres "$MODEL" "$TMP/in.png" "$TMP/s2/out.png" --from-highres $SR > "$TMP/s2.log" 2>&1
r=$(same_files "$TMP/s1" "$TMP/s2"); s=$?
check $s "superres --samples 3 on 2 ranks = 1 process ($r; out, out_1..3, out_mean, out_lowpass)"
p1=$(grep -o "mean of 3 samples [0-9.]* dB" "$TMP/s1.log"); p2=$(grep -o "mean of 3 samples [0-9.]* dB" "$TMP/s2.log")
[ -n "$p1" ] && [ "$p1" = "$p2" ]; check $? "superres PSNR lines agree ($p1 / $p2)"
# Figure 3 on the five samples (20x20; 3 images on rank 0, 2 on rank 1).
mkdir -p "$TMP/faces" && cp "$TMP"/one/sample_00?.png "$TMP/faces/"
EV="--images $TMP/faces --n 5 --crop 20 --sigmas 10,40 --quiet"
OMP_NUM_THREADS=2 "$CLI" eval-denoise $EV --out "$TMP/e1" "$MODEL" > /dev/null 2>&1
$MPI "$CLI" eval-denoise $EV --out "$TMP/e2" "$MODEL" > "$TMP/e2.log" 2>&1
cmp -s "$TMP/e1/results.csv" "$TMP/e2/results.csv" && [ "$(wc -l < "$TMP/e1/results.csv")" = 5 ]
check $? "eval-denoise --n 5 on 2 ranks: results.csv identical ($(sed -n 2p "$TMP/e1/results.csv"))"
r=$(same_files "$TMP/e1" "$TMP/e2"); s=$?
check $s "eval-denoise example images identical ($r)"
# A folder of 5 faces and one corrupt file (3 items on rank 0, 3 on rank 1).
printf 'not a png' > "$TMP/faces/zz_corrupt.png"
DN="--sigma 25 --seed 4 --quiet"
OMP_NUM_THREADS=2 "$CLI" denoise "$MODEL" "$TMP/faces" "$TMP/d1" $DN > "$TMP/d1.log" 2>&1; s1=$?
$MPI "$CLI" denoise "$MODEL" "$TMP/faces" "$TMP/d2" $DN > "$TMP/d2.log" 2>&1; s2=$?
r=$(same_files "$TMP/d1" "$TMP/d2"); s=$?
check $s "denoise of a folder on 2 ranks: images identical ($r)"
[ $s1 = 1 ] && [ $s2 != 0 ]; check $? "both report the corrupt file (exit $s1 and $s2)"
no_seconds() { cut -d, -f1-8,10- "$1"; } # column 9 is the time
[ "$(no_seconds "$TMP/d1/summary.csv")" = "$(no_seconds "$TMP/d2/summary.csv")" ] && [ "$(wc -l < "$TMP/d1/summary.csv")" = 7 ]
check $? "summary.csv identical but for the seconds ($(wc -l < "$TMP/d2/summary.csv") lines)"
m1=$(grep -o "mean PSNR [0-9.]* dB" "$TMP/d1.log"); m2=$(grep -o "mean PSNR [0-9.]* dB" "$TMP/d2.log")
[ -n "$m1" ] && [ "$m1" = "$m2" ]; check $? "mean PSNR lines agree ($m1 / $m2)"
echo "cli_mpi_sampling: $([ $fail = 0 ] && echo passed || echo FAILED)"
exit $fail
