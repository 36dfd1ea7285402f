#!/usr/bin/env bash
# Installs what the IMAP tests need: Dovecot's IMAP server from Debian's packages
# (dovecot-imapd pulls dovecot-core, which has doveadm) and openssl for the TLS variant.
# Idempotent: does nothing when /usr/sbin/dovecot and doveadm are already there.
# Needs root (CI runs as root); elsewhere, run it with sudo or install the packages yourself.
# The tests start their own unprivileged instances (tests/servers/dovecot.py); the system
# service is not wanted, so it is stopped and disabled if the package started it.
set -euo pipefail

say() { echo "install-dovecot: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

if [[ -x /usr/sbin/dovecot && -x /usr/bin/doveadm ]] && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
[[ "$(id -u)" == 0 ]] || die "not root: run 'sudo $0', or 'apt-get install dovecot-imapd openssl'"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Dovecot 2.3+ (imapd) and openssl by hand"

say "installing dovecot-imapd and openssl from the Debian archive"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends dovecot-imapd openssl >/dev/null

# A package install may start the system Dovecot (where an init system runs); the tests
# do not use it, and it would hold ports 143/993.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now dovecot >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  service dovecot stop >/dev/null 2>&1 || true
fi

[[ -x /usr/sbin/dovecot ]] || die "/usr/sbin/dovecot is still missing after the install"
say "installed $(/usr/sbin/dovecot --version)"
