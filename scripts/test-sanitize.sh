#!/usr/bin/env bash
# Build wcm with AddressSanitizer and UndefinedBehaviorSanitizer (-O2, so the
# numeric tests stay quick) and run the default test suite (everything but the
# "slow" label) under them: every test, and every CLI run the tests make, aborts
# on the first memory error, undefined behaviour or leak.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The CPU library (the CUDA runtime is not built for the sanitizers; CI compiles
# the CUDA backend in scripts/test-cuda-compile.sh).
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWCM_SANITIZE=ON -DWCM_CUDA=OFF >/dev/null
cmake --build build-sanitize -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-sanitize && ctest --output-on-failure -LE slow -j1
