#!/usr/bin/env bash
# Device selection on any build: --device cpu works; --device cuda and
# WCM_DEVICE=cuda either work (a CUDA build on a GPU machine) or fail with
# exit 1 and one line saying why (CUDA not built in, no usable GPU);
# malformed names and devices that do not exist fail the same way; no
# output file is left by a failed run.
set -u
WCM="$1"
MODEL="$(dirname "$0")/../models/kadkhodaie2023_face160_j2_rf13.safetensors"
fails=0 checks=0
check() { # DESCRIPTION CONDITION...
  local what=$1; shift
  checks=$((checks+1))
  if "$@"; then echo "ok   $what"; else fails=$((fails+1)); echo "FAIL $what"; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$WCM" --device cpu info "$MODEL" > "$tmp/cpu.out" 2>&1
check "--device cpu info runs" [ $? -eq 0 ]
# expect_clear_failure LABEL PATTERN COMMAND...: exit 1 and exactly one line matching PATTERN.
expect_clear_failure() {
  local label=$1 pattern=$2; shift 2
  "$@" > "$tmp/out" 2>&1; local rc=$?
  check "$label: exit 1 (got $rc)" [ $rc -eq 1 ]
  check "$label: one line: $(head -1 "$tmp/out")" [ "$(wc -l < "$tmp/out")" -eq 1 ]
  check "$label: says why" grep -qE "$pattern" "$tmp/out"
}
why_cuda='^wcm: error: device cuda(:[0-9]+)?( \(from WCM_DEVICE\))?: (this wcm was built without CUDA|no CUDA device is usable|this machine has)'
"$WCM" --device cuda info "$MODEL" > "$tmp/out" 2>&1
if [ $? -eq 0 ]; then
  check "--device cuda info runs (a GPU is usable)" true
else
  expect_clear_failure "--device cuda without CUDA or GPU" "$why_cuda" "$WCM" --device cuda info "$MODEL"
  expect_clear_failure "WCM_DEVICE=cuda without CUDA or GPU" "$why_cuda" env WCM_DEVICE=cuda "$WCM" info "$MODEL"
fi
expect_clear_failure "--device cuda:1000" "$why_cuda" "$WCM" --device cuda:1000 info "$MODEL"
expect_clear_failure "--device gpu" "^wcm: error: unknown device 'gpu': expected cpu, cuda or cuda:N$" "$WCM" --device gpu info "$MODEL"
expect_clear_failure "WCM_DEVICE=cuda:x" "unknown device 'cuda:x' \(from WCM_DEVICE\)" env WCM_DEVICE=cuda:x "$WCM" info "$MODEL"
"$WCM" --device cuda:1000 forward "$MODEL" /dev/null "$tmp/y.npy" > /dev/null 2>&1
check "a failed device selection leaves no output file" [ ! -e "$tmp/y.npy" ]
echo "cli_device: $checks checks, $fails failures"
[ $fails -eq 0 ]
