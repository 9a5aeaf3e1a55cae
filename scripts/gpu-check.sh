#!/usr/bin/env bash
# One run on a GPU machine that verifies the CUDA backend and measures it
# (docs/cuda.md): finds nvcc and cuDNN (the CUDA toolkit's, or the one inside
# PyTorch's Python environment), builds wcm with WCM_CUDA=ON, runs
# test_backend_ops on the GPU, the golden forward and training-step tests on
# the GPU, Figure 3 on 50 faces on the GPU (and on the CPU when time allows),
# and the benchmark against PyTorch on the same GPU in FP32 (TF32 off) and
# TF32. Everything goes to $OUT (default ./gpu-out): env.txt, build.log, one
# log per step, bench.jsonl and summary.md. Each step has a time limit and
# the script goes on after a failure; the whole run takes about 8 minutes.
#
# Data: gpu-data/ (made by scripts/gpu-pack.sh from ../shared) when present,
# else ../shared; steps without their data are reported as skipped.
# usage: scripts/gpu-check.sh   (JOBS=N: the build's -j, default 16; BUILD=DIR: build folder, default build-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
OUT=${OUT:-$root/gpu-out}
mkdir -p "$OUT"
start=$SECONDS
summary=$OUT/summary.md
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
# step NAME LIMIT_SECONDS COMMAND...: runs it with its log in $OUT/NAME.log.
step() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    local verdict=passed
    [ $rc -eq 77 ] && verdict=skipped
    [ $rc -eq 124 ] && verdict="TIMED OUT after ${limit} s"
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ $rc -ne 124 ] && verdict="FAILED (exit $rc)"
    note "- $name: $verdict in $((SECONDS - t0)) s ($(grep -c '^ok' "$OUT/$name.log" || true) ok, $(grep -c '^FAIL' "$OUT/$name.log" || true) FAIL)"
    return $rc
}

# ---- environment: nvcc, cuDNN, the GPU, PyTorch ------------------------------------
python=$(command -v python3 || true)
nvcc=$(command -v nvcc || true)
for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do [ -z "$nvcc" ] && [ -x "$c" ] && nvcc=$c; done
site=""
[ -n "$python" ] && site=$("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
cudnn_root=""
for d in ${CUDNN_ROOT:-} /usr/local/cuda /usr; do
    for lib in "$d"/lib64/libcudnn.so* "$d"/lib/libcudnn.so* "$d"/lib/x86_64-linux-gnu/libcudnn.so*; do
        [ -z "$cudnn_root" ] && [ -e "$lib" ] && cudnn_root=$d
    done
done
# PyTorch's wheel: site-packages/nvidia/cudnn/{include,lib}
for s in $site; do
    [ -z "$cudnn_root" ] && [ -e "$s/nvidia/cudnn/include/cudnn.h" ] && cudnn_root=$s/nvidia/cudnn
done
# CMake may exist only in the Python environment (PyTorch 2.0's triton brings it).
if ! command -v cmake > /dev/null && [ -n "$python" ]; then
    pybin=$(dirname "$(readlink -f "$python")")
    [ -x "$pybin/cmake" ] && export PATH=$PATH:$pybin
fi
missing=""
for tool in cmake cc c++; do command -v $tool > /dev/null || missing="$missing $tool"; done
for header in png.h jpeglib.h; do
    echo "#include <$header>" | cc -E -x c - > /dev/null 2>&1 || missing="$missing $header"
done
{
    echo "date: $(date -u)"
    echo "cmake: $(command -v cmake) $(cmake --version 2>/dev/null | head -1); cc: $(cc --version 2>/dev/null | head -1)"
    echo "missing: ${missing:-nothing}"
    echo "nvcc: ${nvcc:-none} $([ -n "$nvcc" ] && "$nvcc" --version | tail -1)"
    echo "cudnn root: ${cudnn_root:-none}"
    ls "$cudnn_root"/lib*/libcudnn.so* 2>/dev/null | head -3
    nvidia-smi 2>&1 | head -15
    [ -n "$python" ] && "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0))' 2>&1
    nproc
} > "$OUT/env.txt" 2>&1
note "# wcm CUDA check, $(date -u '+%Y-%m-%d %H:%M UTC')"
note ""
note "$(grep -E '^(nvcc|cudnn root|torch|cmake|missing)' "$OUT/env.txt")"
note ""
if [ -z "$nvcc" ] || [ -z "$cudnn_root" ] || [ -n "$missing" ]; then
    note "blocked: nvcc, cuDNN or build tools not found (missing:${missing:- } nvcc=${nvcc:-none} cudnn=${cudnn_root:-none}; see env.txt)"
    exit 1
fi
export PATH=$(dirname "$nvcc"):$PATH
export LD_LIBRARY_PATH=$cudnn_root/lib:$cudnn_root/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# A wheel has only libcudnn.so.9: give the linker the unversioned name beside it.
if [ ! -e "$cudnn_root/lib/libcudnn.so" ] && [ -e "$cudnn_root/lib/libcudnn.so.9" ]; then
    mkdir -p "$OUT/cudnn-link" && ln -sf "$cudnn_root/lib/libcudnn.so.9" "$OUT/cudnn-link/libcudnn.so"
    export LIBRARY_PATH=$OUT/cudnn-link${LIBRARY_PATH:+:$LIBRARY_PATH}
fi

# ---- build -------------------------------------------------------------------------------
build=${BUILD:-$root/build-gpu}
note "## build and tests"
step build 300 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release -DWCM_CUDA=ON -DCUDNN_ROOT='$cudnn_root' &&
    cmake --build '$build' -j${JOBS:-16} --target wcm_cli test_backend_ops test_golden test_train_golden bench_cuda" || {
    tail -30 "$OUT/build.log" >> "$summary"
    exit 1
}

# No usable GPU (driver older than the toolkit, no device): say why and stop.
if ! "$build/wcm" --device cuda info "$root/models/kadkhodaie2023_face160_j2_rf13.safetensors" > "$OUT/device.log" 2>&1; then
    note "blocked: $(tail -1 "$OUT/device.log")"
    exit 1
fi

# ---- data ------------------------------------------------------------------------------------
data=$root/gpu-data
[ -d "$data/golden" ] || data=$root/../shared
export WCM_GOLDEN_DIR=$data/golden WCM_WEIGHTS_DIR=$data/weights/kadkhodaie2023 WCM_SHARED_DIR=$data

# ---- tests on the GPU --------------------------------------------------------------------------
step backend_ops 150 "$build/tests/test_backend_ops" --backend cuda
grep -E '^FAIL' "$OUT/backend_ops.log" | head -20 >> "$summary"
step backend_ops_perf 60 "$build/tests/test_backend_ops" --perf --backend cuda
step golden 120 "$build/tests/test_golden" --device cuda
grep -E '^FAIL' "$OUT/golden.log" | head -10 >> "$summary"
step train_golden 120 "$build/tests/test_train_golden" --device cuda
grep -E '^FAIL' "$OUT/train_golden.log" | head -10 >> "$summary"
# The error path: a device that does not exist.
"$build/wcm" --device cuda:99 info x > "$OUT/no_device.log" 2>&1
note "- cuda:99 gives: $(head -1 "$OUT/no_device.log")"

# ---- benchmark against PyTorch on the same GPU ----------------------------------------------------
note ""
note "## speed (best of 10 after a warm-up; TFLOP/s = 2 x MACs / time; H200 peak: FP32 ~67, TF32 tensor ~495 dense)"
bench=$OUT/bench.jsonl
: > "$bench"
timeout 120 "$build/bench/bench_cuda" >> "$bench" 2> "$OUT/bench_wcm_fp32.err"
WCM_CUDA_TF32=1 timeout 120 "$build/bench/bench_cuda" >> "$bench" 2> "$OUT/bench_wcm_tf32.err"
if [ -n "$python" ]; then
    timeout 120 "$python" bench/bench_cuda.py fp32 >> "$bench" 2> "$OUT/bench_torch_fp32.err"
    timeout 120 "$python" bench/bench_cuda.py tf32 >> "$bench" 2> "$OUT/bench_torch_tf32.err"
fi
"${python:-python3}" - "$bench" >> "$summary" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith('{')]
t = {(r['impl'], r['case'], r['precision']): r for r in rows}
print('| case | precision | wcm s | wcm TFLOP/s | PyTorch s | PyTorch TFLOP/s | speed-up |')
print('|---|---|---|---|---|---|---|')
for case in dict.fromkeys(r['case'] for r in rows):
    for p in ('fp32', 'tf32'):
        w, q = t.get(('wcm', case, p)), t.get(('pytorch', case, p))
        f = lambda r, k: '%.4g' % r[k] if r else 'n/a'
        ratio = '%.2fx' % (q['seconds'] / w['seconds']) if w and q else 'n/a'
        print(f'| {case} | {p} | {f(w, "seconds")} | {f(w, "tflops")} | {f(q, "seconds")} | {f(q, "tflops")} | {ratio} |')
PY
cat "$OUT"/bench_*.err 2>/dev/null | head -10 >> "$summary"

# ---- end to end: sampling and training through the CLI, GPU against CPU ------------------------------
note ""
note "## sampling and training end to end (GPU, then CPU for the difference)"
model=$root/models/kadkhodaie2023_face160_j2_rf13.safetensors
step sample_gpu 90 "$build/wcm" sample "$model" --device cuda --n 16 --seed 1 --npy --out "$OUT/sample_gpu"
[ $((SECONDS - start)) -lt 380 ] && step sample_cpu 120 "$build/wcm" sample "$model" --device cpu --n 2 --seed 1 --npy --out "$OUT/sample_cpu"
"${python:-python3}" - "$OUT/sample_gpu" "$OUT/sample_cpu" >> "$summary" <<'PY'
import glob, os, sys
try:
    import numpy as np
except ImportError:
    print('- (numpy missing: no sample comparison)'); sys.exit()
for f in sorted(glob.glob(os.path.join(sys.argv[2], 'sample_*.npy'))):
    g = os.path.join(sys.argv[1], os.path.basename(f))
    if os.path.exists(g):
        a, b = np.load(g), np.load(f)
        print(f'- {os.path.basename(f)}: max |GPU - CPU| = {np.abs(a - b).max():.3g} (image range {b.min():.2f}..{b.max():.2f})')
PY
for dev in cuda cpu; do
    [ -d "$data/data/celeba/test" ] || break
    [ $dev = cpu ] && [ $((SECONDS - start)) -gt 420 ] && { note "- train_cpu: not run (time)"; break; }
    step "train_$dev" 120 "$build/wcm" train --device $dev --kind flat --rf 13 --data "$data/data/celeba/test" \
        --epochs 3 --batch 16 --seed 1 -o "$OUT/train_$dev.safetensors"
    [ -f "$OUT/train_$dev.log.csv" ] && note "  $(tr '\n' ' ' < "$OUT/train_$dev.log.csv")"
done

# ---- Figure 3 on 50 faces: GPU, and CPU for the difference ------------------------------------------------
note ""
note "## Figure 3 (50 faces, flat and multi-scale RF 13 and 43)"
w=$data/weights/kadkhodaie2023/denoisers
if [ -d "$data/data/celeba/test" ] && [ -d "$w" ]; then
    models=""
    for rf in 13 43; do
        ms=$w/multi_scale/celebA_160x160_gray
        "$build/wcm" import-torch -o "$OUT/flat_rf$rf.safetensors" "$w/flat/celebA_160x160_gray/noise_range_0to255_RF_${rf}x${rf}/model.pt" > /dev/null &&
        "$build/wcm" import-torch -o "$OUT/ms_rf$rf.safetensors" --low "$ms/noise_range_0to255_RF_40x40_low/model.pt" \
            "$ms/noise_range_0to255_RF_${rf}x${rf}_scale_0/model.pt" "$ms/noise_range_0to255_RF_${rf}x${rf}_scale_1/model.pt" > /dev/null &&
        models="$models $OUT/flat_rf$rf.safetensors $OUT/ms_rf$rf.safetensors"
    done
    step fig3_gpu 150 "$build/wcm" eval-denoise --device cuda --images "$data/data/celeba/test" --n 50 --out "$OUT/fig3_gpu" $models
    left=$(( 470 - (SECONDS - start) ))
    if [ $left -gt 30 ]; then
        step fig3_cpu $left "$build/wcm" eval-denoise --device cpu --images "$data/data/celeba/test" --n 50 --out "$OUT/fig3_cpu" $models
    else
        note "- fig3_cpu: not run (time)"
    fi
    "${python:-python3}" - "$OUT/fig3_gpu/results.json" "$OUT/fig3_cpu/results.json" >> "$summary" <<'PY'
import json, os, sys
g = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else None
c = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else None
if not g:
    print('no GPU results'); sys.exit()
for name, curve in g.get('models', {}).items():
    line = f'- {name}: GPU ' + ' '.join('%.2f' % v for v in curve)
    if c and name in c.get('models', {}):
        d = max(abs(a - b) for a, b in zip(curve, c['models'][name]))
        line += f'; max |GPU - CPU| = {d:.4f} dB'
    print(line)
PY
else
    note "- skipped: no faces or weights under $data"
fi
note ""
note "total: $((SECONDS - start)) s"
