#!/usr/bin/env bash
# Import every network the authors published (Kadkhodaie, Guth, Mallat,
# Simoncelli, ICLR 2023; LabForComputationalVision/local-probability-models-of-images,
# MIT licence) into wcm safetensors files:
#   flat_rf{5,9,13,23,43}.safetensors   pixel-domain BF-CNNs, 160x160 CelebA
#   ms_rf{5,9,13,23,43}.safetensors     multi-scale J=2 models (low-pass net +
#                                        conditional nets for scales 0 and 1)
#   ms320_rf13.safetensors              the 320x320 J=3 cascade (RF 13)
#
# usage: scripts/import-authors-models.sh AUTHORS_DIR OUT_DIR [WCM]
#   AUTHORS_DIR  a checkout of the authors' repository (the folder holding
#                denoisers/), or its denoisers/ folder itself
#   OUT_DIR      where the .safetensors files go (created)
#   WCM          the wcm executable (default: build/wcm, then wcm on PATH)
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
src=$1 out=$2
wcm=${3:-}
if [ -z "$wcm" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ -x "$here/build/wcm" ]; then wcm=$here/build/wcm; else wcm=$(command -v wcm || true); fi
fi
[ -n "$wcm" ] && [ -x "$wcm" ] || { echo "import-authors-models: no wcm executable (build first or pass it)" >&2; exit 1; }
[ -d "$src/denoisers" ] && src=$src/denoisers
flat=$src/flat/celebA_160x160_gray
ms=$src/multi_scale/celebA_160x160_gray
ms320=$src/multi_scale/celebA_320x320_gray
[ -d "$flat" ] && [ -d "$ms" ] || { echo "import-authors-models: $src has no flat/ and multi_scale/ celebA folders" >&2; exit 1; }
mkdir -p "$out"
for rf in 5 9 13 23 43; do
  "$wcm" import-torch -o "$out/flat_rf$rf.safetensors" "$flat/noise_range_0to255_RF_${rf}x${rf}/model.pt"
  "$wcm" import-torch -o "$out/ms_rf$rf.safetensors" --low "$ms/noise_range_0to255_RF_40x40_low/model.pt" \
    "$ms/noise_range_0to255_RF_${rf}x${rf}_scale_0/model.pt" "$ms/noise_range_0to255_RF_${rf}x${rf}_scale_1/model.pt"
done
if [ -d "$ms320" ]; then
  "$wcm" import-torch -o "$out/ms320_rf13.safetensors" --low "$ms320/noise_range_0to255_RF_40x40_low/model.pt" \
    "$ms320/noise_range_0to255_RF_13x13_scale_0/model.pt" "$ms320/noise_range_0to255_RF_13x13_scale_1/model.pt" \
    "$ms320/noise_range_0to255_RF_13x13_scale_2/model.pt"
else
  echo "import-authors-models: no $ms320 (the 320x320 cascade is skipped)" >&2
fi
ls -l "$out"/*.safetensors
