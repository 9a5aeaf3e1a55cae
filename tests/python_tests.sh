#!/usr/bin/env bash
# The Python package's pytest suite (python/tests) against this build: the
# package from the source tree, this build's libwcm.so and wcm executable.
# Skips (exit 77) when no python3 has numpy and pytest.
# usage: python_tests.sh SOURCE_DIR LIBWCM_SO WCM_CLI SHARED_DIR
set -u
src=$1 lib=$2 cli=$3 shared=$4
found=
for py in ${WCM_PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c "import numpy, pytest" 2>/dev/null; then
    found=$py
    break
  fi
done
if [ -z "$found" ]; then
  echo "SKIP: no python3 with numpy and pytest (Debian: python3-numpy python3-pytest)"
  exit 77
fi
export PYTHONPATH="$src/python" WCM_LIBRARY="$lib" WCM_CLI="$cli" WCM_SHARED_DIR="$shared" WCM_SOURCE_DIR="$src"
export PYTHONDONTWRITEBYTECODE=1
exec "$found" -m pytest -v -rs -p no:cacheprovider "$src/python/tests"
