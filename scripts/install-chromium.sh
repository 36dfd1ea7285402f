#!/usr/bin/env bash
# Installs what the browser tests (tests/browser/) need: Debian's `chromium`, which
# Playwright drives through executable_path (no browser is downloaded from the internet).
# Idempotent: does nothing when /usr/bin/chromium is already there.
# Needs root (CI runs as root); elsewhere, run it with sudo or `apt-get install chromium`.
set -euo pipefail

say() { echo "install-chromium: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
[[ "$(id -u)" == 0 ]] || die "not root: run 'sudo $0', or 'apt-get install chromium'"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Chromium so that /usr/bin/chromium exists"

say "installing chromium from the Debian archive"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[[ -x /usr/bin/chromium ]] || die "chromium was installed but /usr/bin/chromium is missing"
