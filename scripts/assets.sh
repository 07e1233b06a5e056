#!/usr/bin/env bash
# Install the front-end assets the maps need into static/vendor/ (git-ignored), from the npm
# registry, at pinned versions. Pages then load Leaflet from the app itself, never from a CDN.
# Idempotent: does nothing when static/vendor/VERSIONS already lists the same pins.
set -euo pipefail

cd "$(dirname "$0")/.."
VENDOR=static/vendor
WORK=.var/npm

# Pinned versions (npm package@version). Change here, re-run `make assets`.
PACKAGES=(
  "leaflet@1.9.4"
  "leaflet.markercluster@1.5.3"
  "leaflet.vectorgrid@1.3.0"
  "ol@7.2.2"  # OpenLayers for the Django admin's map widgets (geo/admin.py)
  "axe-core@4.14.1"  # accessibility checks, loaded by the browser tests only (never by a page)
)
# Bump LAYOUT when the files copied below change, so that existing installs are redone.
LAYOUT="layout 4"
WANTED="$(printf '%s\n' "${PACKAGES[@]}" "$LAYOUT")"

if [[ -f "$VENDOR/VERSIONS" && "$(cat "$VENDOR/VERSIONS")" == "$WANTED" ]]; then
  echo "front-end assets: present (${PACKAGES[*]})"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: run scripts/system-deps.sh (Debian packages nodejs npm)" >&2
  exit 1
fi

rm -rf "$WORK"
mkdir -p "$WORK"
for spec in "${PACKAGES[@]}"; do
  # `npm pack` fetches the published tarball and checks it against the registry's integrity hash.
  (cd "$WORK" && npm pack --silent --no-fund --no-audit "$spec" >/dev/null 2>&1) || {
    echo "could not download $spec from the npm registry" >&2
    exit 1
  }
done

unpack() {  # unpack <tarball-glob> <dir>
  mkdir -p "$WORK/$2"
  tar -xzf $WORK/$1 -C "$WORK/$2" --strip-components=1
}
unpack "leaflet-*.tgz" leaflet
unpack "leaflet.markercluster-*.tgz" markercluster
unpack "leaflet.vectorgrid-*.tgz" vectorgrid
unpack "ol-*.tgz" ol
unpack "axe-core-*.tgz" axe-core

NEW="$VENDOR.new"
rm -rf "$NEW"
mkdir -p "$NEW/leaflet" "$NEW/leaflet.markercluster" "$NEW/leaflet.vectorgrid"
# Source maps too: the scripts name them, and collectstatic's manifest storage checks that they exist.
cp "$WORK/leaflet/dist/leaflet.js" "$WORK/leaflet/dist/leaflet.js.map" "$WORK/leaflet/dist/leaflet.css" "$NEW/leaflet/"
cp -r "$WORK/leaflet/dist/images" "$NEW/leaflet/images"
cp "$WORK/leaflet/LICENSE" "$NEW/leaflet/LICENSE"
cp "$WORK/markercluster/dist/leaflet.markercluster.js" "$WORK/markercluster/dist/leaflet.markercluster.js.map" \
   "$WORK/markercluster/dist/MarkerCluster.css" \
   "$WORK/markercluster/dist/MarkerCluster.Default.css" "$NEW/leaflet.markercluster/"
cp "$WORK/markercluster/MIT-LICENCE.txt" "$NEW/leaflet.markercluster/LICENSE" 2>/dev/null || true
cp "$WORK/vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js" "$NEW/leaflet.vectorgrid/"
cp "$WORK/vectorgrid/dist/"Leaflet.VectorGrid.bundled.min.js.map "$NEW/leaflet.vectorgrid/" 2>/dev/null || true
cp "$WORK/vectorgrid/LICENSE" "$NEW/leaflet.vectorgrid/LICENSE" 2>/dev/null || true
mkdir -p "$NEW/ol"
cp "$WORK/ol/dist/ol.js" "$WORK/ol/ol.css" "$NEW/ol/"
cp "$WORK/ol/dist/ol.js.map" "$NEW/ol/" 2>/dev/null || true
cp "$WORK/ol/LICENSE.md" "$NEW/ol/LICENSE" 2>/dev/null || true
mkdir -p "$NEW/axe-core"
cp "$WORK/axe-core/axe.min.js" "$WORK/axe-core/LICENSE" "$NEW/axe-core/"
printf '%s\n' "$WANTED" >"$NEW/VERSIONS"

rm -rf "$VENDOR"
mv "$NEW" "$VENDOR"
rm -rf "$WORK"
echo "front-end assets: installed ${PACKAGES[*]} into $VENDOR"
