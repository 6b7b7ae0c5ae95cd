#!/bin/sh
# Debian packages the test suite drives as real peers. Installs only what is missing.
#   curl — the guide's own curl commands are run as written
set -eu
missing=""
command -v curl >/dev/null 2>&1 || missing="$missing curl"
[ -z "$missing" ] && exit 0

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to install:$missing" >&2; exit 1; fi
}
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
