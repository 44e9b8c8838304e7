#!/usr/bin/env bash
# Builds tlkit against LibTorch 2.6 from Debian 13 ("trixie") and runs the whole test suite there,
# in a Debian 13 root made with debootstrap (Debian 12's own LibTorch is 1.13).
#
#   sudo bash scripts/libtorch2.sh cpu    # libtorch-dev 2.6 (CPU) + Python torch 2.6: build + ctest
#   sudo bash scripts/libtorch2.sh cuda   # libtorch-cuda-dev 2.6 + CUDA 12.4: compile every target
#
# The root is made once and kept in a cache folder outside the repository
# (TLKIT_TRIXIE_CACHE, default ~/.cache/tlkit), one per flavour (they conflict); its build folder
# is kept too, so a rerun rebuilds only what changed. The Debian mirror is the host's (its apt
# sources), or MIRROR=... . /proc, /sys and /dev are mounted into the root only while it runs.
# cuDNN is not in Debian: the cuda flavour links with -Wl,--allow-shlib-undefined, a compile and
# link check whose binaries cannot start without a real cuDNN.
set -euo pipefail
flavour="${1:-cpu}"
case "$flavour" in cpu|cuda) ;; *) echo "usage: $0 [cpu|cuda]" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "libtorch2.sh: run as root (debootstrap and chroot need it)" >&2; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${TLKIT_TRIXIE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tlkit}"
root="$cache/trixie-$flavour"
jobs="$(nproc)"

host_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
mirror="${MIRROR:-$(host_mirror)}"

packages=(cmake ninja-build g++ pkg-config ccache libopencv-dev libcxxopts-dev libspdlog-dev
  libgtest-dev nlohmann-json3-dev zlib1g-dev libjpeg-dev libssl-dev python3-numpy libopenblas0-pthread
  opencv-doc fonts-dejavu-core fonts-dejavu-extra dataset-fashion-mnist)
if [ "$flavour" = cpu ]; then
  packages+=(libtorch-dev libgloo-dev python3-torch python3-torchvision)
  components="main"
else
  # CUDA's Gloo (libgloo-dev conflicts with libtorch-cuda); NCCL's header for c10d's NCCL backend.
  packages+=(libtorch-cuda-dev libgloo-cuda-dev libnccl-dev nvidia-cuda-toolkit)
  components="main contrib non-free"
fi

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_into_root() {
  mkdir -p "$root$2"
  mount ${3:-} --bind "$1" "$root$2"
  mounted+=("$root$2")
}
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 bash -c "$1"; }

start=$(date +%s)
if [ ! -f "$root/.tlkit-ready" ]; then
  if [ ! -f "$root/.tlkit-base" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap; }
    echo "libtorch2.sh: creating the Debian 13 root in $root from $mirror"
    rm -rf "$root"
    mkdir -p "$root"
    debootstrap --variant=minbase trixie "$root" "$mirror"
    touch "$root/.tlkit-base"
  fi
  echo "deb $mirror trixie $components" > "$root/etc/apt/sources.list"
  mount_into_root /proc /proc
  mount_into_root /sys /sys
  mount_into_root /dev /dev
  mount_into_root /dev/pts /dev/pts
  if [ "$flavour" = cuda ]; then
    # The cuDNN package is only a downloader; without a network its postinst fails.
    in_root "apt-get update -qq && apt-get install -y -qq debconf-utils &&
             echo 'nvidia-cudnn nvidia-cudnn/question select I Decline' | debconf-set-selections"
  fi
  in_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages[*]} &&
           apt-get clean"
  cleanup
  mounted=()
  printf '%s\n' "${packages[@]}" > "$root/.tlkit-ready"
  echo "libtorch2.sh: root ready after $(( $(date +%s) - start )) s ($(du -sh "$root" | cut -f1))"
fi

mount_into_root /proc /proc
mount_into_root /sys /sys
mount_into_root /dev /dev
mount_into_root /dev/pts /dev/pts
mount_into_root "$repo" /src/tlkit "-o ro"
mount -o remount,ro,bind "$root/src/tlkit" 2>/dev/null || true
torch_version=$(in_root "dpkg-query -W -f='\${Version}' libtorch-dev libtorch-cuda-dev 2>/dev/null | head -c 40")
echo "libtorch2.sh: LibTorch $torch_version ($flavour), building with $jobs jobs"

build="/build-$flavour"
configure="cmake -S /src/tlkit -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release"
if [ "$flavour" = cpu ]; then
  in_root "$configure && cmake --build $build -j $jobs -- -k 0 && \
           cd $build && ctest -j $jobs --output-on-failure --timeout 1800"
else
  # No Python torch in this root: the tests are compiled, not given their reference data; and
  # without cuDNN the test binary cannot start, so its tests are listed when ctest runs, not
  # after linking.
  in_root "$configure -DTLKIT_REFERENCE_DATA=OFF -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
             -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined \
             -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--allow-shlib-undefined && \
           cmake --build $build -j $jobs -- -k 0"
  echo "libtorch2.sh: every target compiled and linked against libtorch-cuda (not run: no GPU here)"
fi
echo "libtorch2.sh: $flavour passed in $(( $(date +%s) - start )) s"
