#!/bin/sh
# Debian packages the test suite drives as real peers. Installs only what is missing.
#   curl             — the guide's own curl commands are run as written
#   chromium         — the pages and cnx.js are tested in real headless Chromium (through
#                      Playwright, told to use /usr/bin/chromium; it never downloads a browser)
#   nodejs, npm      — the cnx.js npm package is packed, installed with esbuild and TypeScript
#                      from the npm registry into a throwaway CRM project, bundled and type-checked
#   baresip-core     — SIP phones (callers, operators' phones) scripted over ctrl_tcp
#   sip-tester       — SIPp, for SIP protocol cases, load and the benchmarks
#   espeak-ng        — text prompts rendered to audio
#   sox              — audio checks in tests
#   rtpengine-daemon — the rtpengine media backend (userspace mode)
#   redis-server     — a private Redis that the coordination tests stop and restart
set -eu
missing=""
command -v curl >/dev/null 2>&1 || missing="$missing curl"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
command -v baresip >/dev/null 2>&1 || missing="$missing baresip-core"
command -v sipp >/dev/null 2>&1 || missing="$missing sip-tester"
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v sox >/dev/null 2>&1 || missing="$missing sox"
command -v rtpengine >/dev/null 2>&1 || missing="$missing rtpengine-daemon"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
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
# rtpengine's package starts a daemon by default; the tests run their own instance.
apt_get install -y -q --no-install-recommends $missing
