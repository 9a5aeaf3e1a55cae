#!/usr/bin/env bash
# Install the built tree into a temporary prefix, build the examples against
# the installed shared library through pkg-config, and run one: what a C
# user of the library does. Usage: scripts/test-install.sh [BUILD_DIR]
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
