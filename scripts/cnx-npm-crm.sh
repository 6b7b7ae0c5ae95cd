#!/bin/sh
# Pack the npm package @voicemgmt/cnx (packages/cnx) and make a CRM project with it in DIR:
# tests/browser/npm_crm copied there, the packed tarball and a bundler (esbuild) and TypeScript
# installed from the npm registry, the page bundled into DIR/public. The browser tests run it;
# by hand: scripts/cnx-npm-crm.sh /tmp/crm && (cd /tmp/crm && npm run typecheck).
# Downloads go through npm's cache (~/.npm, or $npm_config_cache): later runs prefer it.
# Needs node/npm (Debian: nodejs, npm) and python3 (the package's build).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
export npm_config_update_notifier=false

cp -R "$root/tests/browser/npm_crm/." "$dir/"
# npm pack runs the package's prepack (build.py); it prints the tarball's name last.
tarball=$(cd "$root/packages/cnx" && npm pack --pack-destination "$dir" | tail -n 1)
cd "$dir"
npm install --no-audit --no-fund --prefer-offline "./$tarball"
npm run build
