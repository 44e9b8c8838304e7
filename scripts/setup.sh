#!/usr/bin/env bash
# Installs every Debian package tlkit needs to build, test and run its demo. Idempotent.
# Usage: sudo bash scripts/setup.sh   (or as root)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev libopenblas0-pthread libopencv-dev libjpeg-dev libcxxopts-dev libspdlog-dev libgtest-dev libssl-dev
  python3-torch python3-torchvision python3-numpy python3-sklearn python3-onnx
  dataset-fashion-mnist opencv-doc fonts-dejavu-core fonts-dejavu-extra
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
