#!/usr/bin/env bash
# Install the Debian 12 packages wcm needs to build and test. Idempotent:
# does nothing when everything is present. Run as root (or with sudo).
set -euo pipefail
# Open MPI: data-parallel training and sampling under mpirun (wcm/comm.h);
# without it the build has the serial communicator only. numpy, pytest, venv
# and pip: the Python package and its tests.
packages=(build-essential cmake pkg-config libpng-dev libjpeg62-turbo-dev openmpi-bin libopenmpi-dev python3-numpy python3-pytest python3-venv python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present (${packages[*]})"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
