#!/usr/bin/env bash
# Installs what the local-PDS tests need, from the npm registry only:
#   - Node 22 (the @atproto/pds engine) from the npm package node-linux-<arch>,
#     unpacked into <repo>/.cache/node22 (git-ignored);
#   - tests/pds/node_modules via `npm ci`, with better-sqlite3 compiled against
#     that Node's headers (npm_config_nodedir).
# Idempotent: a second run with nothing changed takes well under a second.
# Exits non-zero with a message on stderr when something fails.
#
# Env: PDS_INSTALL_FORCE=1 reinstalls both; NPM (default: npm on PATH).
set -euo pipefail

NODE_VERSION=22.23.3
declare -A NODE_INTEGRITY=(
  [x64]='sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=='
  [arm64]='sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA=='
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
NODE_DIR="$CACHE/node22"
PDS_DIR="$ROOT/tests/pds"
STAMP="$PDS_DIR/node_modules/.duress-watcher-install"
NPM="${NPM:-npm}"

die() {
  echo "install-pds: ERROR: $*" >&2
  exit 1
}
say() { echo "install-pds: $*" >&2; }

case "$(uname -m)" in
  x86_64 | amd64) ARCH=x64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) die "unsupported machine $(uname -m): only x86_64 and aarch64 Linux are handled" ;;
esac
[[ "$(uname -s)" == Linux ]] || die "only Linux is handled (node-linux-$ARCH)"
command -v "$NPM" >/dev/null 2>&1 || die "npm not found on PATH (any npm >= 9 works; it runs on the Node it installs)"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

mkdir -p "$CACHE"
# One installer at a time (parallel test runs share the cache).
exec 9>"$CACHE/install-pds.lock"
flock -w 600 9 || die "timed out waiting for another install-pds.sh (lock $CACHE/install-pds.lock)"

sri_of() { # file -> sha512-<base64>
  python3 -c 'import base64,hashlib,sys; print("sha512-"+base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$1"
}

install_node() {
  local pkg
  tmp="$(mktemp -d "$CACHE/node22.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  say "fetching Node $NODE_VERSION (npm package node-linux-$ARCH)"
  (cd "$tmp" && "$NPM" pack --silent "node-linux-$ARCH@$NODE_VERSION" >"$tmp/pack.out" 2>"$tmp/pack.err") ||
    die "npm pack node-linux-$ARCH@$NODE_VERSION failed: $(tail -n 5 "$tmp/pack.err")"
  pkg="$tmp/node-linux-$ARCH-$NODE_VERSION.tgz"
  [[ -f "$pkg" ]] || die "npm pack did not produce $pkg"
  [[ "$(sri_of "$pkg")" == "${NODE_INTEGRITY[$ARCH]}" ]] ||
    die "integrity mismatch for node-linux-$ARCH@$NODE_VERSION"
  mkdir "$tmp/node"
  tar -xzf "$pkg" -C "$tmp/node" --strip-components=1 || die "could not unpack $pkg"
  [[ "$("$tmp/node/bin/node" --version)" == "v$NODE_VERSION" ]] || die "unpacked node does not run"
  [[ -f "$tmp/node/include/node/node.h" ]] || die "node package has no headers (include/node)"
  rm -rf "$NODE_DIR"
  mv "$tmp/node" "$NODE_DIR"
}

if [[ "${PDS_INSTALL_FORCE:-0}" == 1 ]] || [[ "$("$NODE_DIR/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
  install_node
fi

export PATH="$NODE_DIR/bin:$PATH" # npm's `#!/usr/bin/env node` and its scripts now run on Node 22
export npm_config_nodedir="$NODE_DIR" # node-gyp compiles better-sqlite3 against these headers
export npm_config_build_from_source=true # skip prebuild-install's download: it cannot work offline
export JOBS="${JOBS:-max}" # node-gyp: compile sqlite3.c and the addon side by side
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

want="$(cat "$PDS_DIR/package.json" "$PDS_DIR/package-lock.json" | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())') node-$NODE_VERSION"
if [[ "${PDS_INSTALL_FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

say "npm ci in tests/pds (compiles better-sqlite3; about a minute)"
log="$CACHE/npm-ci.log"
if ! (cd "$PDS_DIR" && "$NPM" ci --no-audit --no-fund >"$log" 2>&1); then
  tail -n 30 "$log" >&2
  die "npm ci in $PDS_DIR failed (full log: $log)"
fi
(cd "$PDS_DIR" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()") 2>>"$log" ||
  die "better-sqlite3 does not load under Node $NODE_VERSION (log: $log)"
echo "$want" >"$STAMP"
say "ready: $NODE_DIR/bin/node, $PDS_DIR/node_modules"
