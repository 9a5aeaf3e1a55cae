#!/usr/bin/env bash
# Install the built tree into a temporary prefix, build the examples against
# the installed shared library through pkg-config, and run one: what a C
# user of the library does; then pip-install the Python package into a
# virtual environment and check that it gives the C example's result.
# Usage: scripts/test-install.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prefix=$(mktemp -d /tmp/wcm-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
libdir=$(pkg-config --variable=libdir wcm)
for src in examples/*.c; do
  exe="$prefix/$(basename "$src" .c)"
  cc -std=c11 -Wall -Wextra -Werror "$src" $(pkg-config --cflags --libs wcm) -Wl,-rpath,"$libdir" -lm -o "$exe"
  echo "ok   built $src against the installed library"
done
linked=$(ldd "$prefix/denoise_image" | grep -o 'libwcm\.so[.0-9]*' | head -1 || true)
[ -n "$linked" ] || { echo "FAIL denoise_image does not link libwcm.so"; exit 1; }
echo "ok   denoise_image links the shared library ($linked)"
# The shipped model on the synthetic test image of examples/data.
model="$prefix/share/wcm/models/kadkhodaie2023_face160_j2_rf13.safetensors"
[ -f "$model" ] || { echo "FAIL the shipped model was not installed"; exit 1; }
"$prefix/denoise_image" "$model" examples/data/synthetic160.png "$prefix/out.png" 50
[ -s "$prefix/out.png" ] || { echo "FAIL denoise_image wrote no output"; exit 1; }
echo "ok   the example denoised examples/data/synthetic160.png with the installed model"
# What a Python user does: the package installed with pip into a virtual
# environment (offline: Debian's numpy, setuptools and wheel through
# --system-site-packages), bundling this build's library, used from outside
# the source tree.
if ! /usr/bin/python3 -c "import numpy, venv" 2>/dev/null; then
  echo "skip the Python install check (no python3-numpy / python3-venv)"
  exit 0
fi
/usr/bin/python3 -m venv --system-site-packages "$prefix/venv"
WCM_LIBRARY="$PWD/$build/libwcm.so" "$prefix/venv/bin/pip" install -q --no-build-isolation ./python
rm -rf python/build python/wcm.egg-info
(cd "$prefix" && "$prefix/venv/bin/python" - "$model" "$OLDPWD/examples/data/synthetic160.png" "$prefix/py.png") <<'PY'
import sys
import wcm
model, image, out = sys.argv[1:]
assert wcm.library_path().startswith(sys.prefix), f"not the bundled library: {wcm.library_path()}"
clean = wcm.read_image(image)
noisy = wcm.add_noise_255(clean, 50, seed=0)
denoised = wcm.denoise(wcm.load_model(model), noisy)
gain = wcm.psnr(clean, denoised) - wcm.psnr(clean, noisy)
assert gain > 10, f"denoising gained only {gain:.2f} dB"
wcm.write_image(out, denoised)
print(f"ok   pip-installed wcm {wcm.__version__} denoised the synthetic face: +{gain:.2f} dB")
PY
cmp -s "$prefix/py.png" "$prefix/out.png" || { echo "FAIL the Python result differs from the C example's"; exit 1; }
echo "ok   the Python package's output equals the C example's byte for byte"
