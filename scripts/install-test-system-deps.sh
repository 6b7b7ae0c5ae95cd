#!/bin/sh
# Debian packages the test suite drives as real peers. Installs only what is missing.
#   curl     — the guide's own curl commands are run as written
#   chromium — the pages and cnx.js are tested in real headless Chromium (through Playwright,
#              which is told to use /usr/bin/chromium and never downloads a browser)
set -eu
missing=""
command -v curl >/dev/null 2>&1 || missing="$missing curl"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -z "$missing" ] && exit 0

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to install:$missing" >&2; exit 1; fi
}
# Wait for another apt/dpkg run (unattended upgrades, a parallel job) instead of failing.
apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}
apt_get update -q
apt_get install -y -q --no-install-recommends $missing
