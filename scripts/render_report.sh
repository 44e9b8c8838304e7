#!/usr/bin/env bash
# A run folder's report.html as a PNG, rendered by Debian's headless Chromium (for a look at the
# page without a desktop). Installs Debian's `chromium` package with apt-get when it is missing
# and this runs as root. The page needs no network: it refers only to files in the run folder.
# Usage: bash scripts/render_report.sh RUN [OUT.png]   (default OUT: RUN/report.png)
#        REPORT_WIDTH / REPORT_HEIGHT set the window (default 1200 x 3000 pixels).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 RUN [OUT.png]" >&2
  exit 2
fi
run="$1"
page="$run/report.html"
if [[ ! -f "$page" ]]; then
  echo "error: no report.html in '$run': give the folder of a finished tlkit finetune or train run" >&2
  exit 1
fi
page="$(cd "$(dirname "$page")" && pwd)/report.html"
out="${2:-$run/report.png}"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

browser=""
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then browser="$name"; break; fi
done
if [[ -z "$browser" ]]; then
  if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: chromium is not installed; install Debian's package as root" \
      "(apt-get install chromium) and rerun" >&2
    exit 1
  fi
  echo "installing Debian's chromium (apt-get install chromium)..." >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
    echo "error: apt-get could not install chromium (no Debian archive reachable?);" \
      "install it by hand and rerun" >&2
    exit 1
  fi
  browser=chromium
fi

# A throwaway profile, so a root run leaves nothing in the home folder and never meets a lock.
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
"$browser" --headless --disable-gpu --no-sandbox --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$out" --window-size="${REPORT_WIDTH:-1200},${REPORT_HEIGHT:-3000}" \
  "file://$page" >"$profile/log" 2>&1 || true
if [[ ! -s "$out" ]]; then
  cat "$profile/log" >&2
  echo "error: $browser wrote no screenshot to '$out' (its messages above)" >&2
  exit 1
fi
echo "wrote $out"
