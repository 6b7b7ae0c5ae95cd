#!/usr/bin/env bash
# Refresh the browser libraries the product serves itself (no CDN: a page never loads a
# script from elsewhere), from the npm registry, checked against the registry's integrity.
# The files are committed under src/voicemgmt/web/static/vendor/; run this only to upgrade.
#   uPlot — small canvas charts (MIT), used by the supervisor page.
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null)
tarball="$work/uplot-${UPLOT_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ "$actual" != "$UPLOT_INTEGRITY" ]]; then
  echo "uplot ${UPLOT_VERSION}: integrity mismatch ($actual)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
target=src/voicemgmt/web/static/vendor/uplot
mkdir -p "$target"
cp "$work/package/dist/uPlot.esm.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$target/"
echo "uplot ${UPLOT_VERSION} → $target"
