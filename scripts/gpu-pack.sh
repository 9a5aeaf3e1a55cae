#!/usr/bin/env bash
# Copies what scripts/gpu-check.sh needs from ../shared into gpu-data/ (an
# ignored folder of the working tree, so that it can travel to a GPU
# machine where ../shared does not exist): the golden files, the authors'
# denoisers they use, and the first 50 celeba/test faces with the Figure-3
# reference. About 33 MiB.
# usage: scripts/gpu-pack.sh [SHARED_DIR]     (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
for need in golden weights/kadkhodaie2023/denoisers data/celeba/test reference/fig3_devtest50.json; do
    [ -e "$shared/$need" ] || { echo "gpu-pack: $shared/$need is missing" >&2; exit 1; }
done
rm -rf gpu-data
mkdir -p gpu-data/weights/kadkhodaie2023 gpu-data/data/celeba/test gpu-data/reference
cp -r "$shared/golden" gpu-data/golden
cp -r "$shared/weights/kadkhodaie2023/denoisers" gpu-data/weights/kadkhodaie2023/
find "$shared/data/celeba/test" -maxdepth 1 -type f | sort | head -n 50 | xargs -I{} cp {} gpu-data/data/celeba/test/
cp "$shared/reference/fig3_devtest50.json" gpu-data/reference/
du -sh gpu-data
