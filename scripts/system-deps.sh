#!/usr/bin/env bash
# Install the Debian packages AMAP Atlas needs, only when something is missing.
# Safe to re-run: it checks files first and calls apt-get only for what is absent.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
missing=()

need() {  # need <file-or-command> <debian-package>
  local probe="$1" pkg="$2"
  if [[ "$probe" == /* ]]; then
    [[ -e "$probe" ]] || missing+=("$pkg")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg")
  fi
}

need "/usr/lib/postgresql/${PG_MAJOR}/bin/postgres" "postgresql-${PG_MAJOR}"
need "/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control" "postgresql-${PG_MAJOR}-postgis-3"
need gdal-config libgdal-dev
need ogr2ogr gdal-bin
need geos-config libgeos-dev
need /usr/include/proj.h libproj-dev
need psql postgresql-client
need /usr/bin/chromium chromium
need wrk wrk
# The shared-cache test starts a Redis server of its own (tests/test_shared_cache.py).
need redis-server redis-server
# Front-end assets (Leaflet and plugins) are fetched from the npm registry by scripts/assets.sh.
need npm npm
need python3 python3
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=("python3-venv")
# The self-hosted address server: Addok runs on a project-local Redis (scripts/addok.sh), and one of
# its Python packages (python-geohash) builds from source at `pip install`.
need /usr/bin/redis-server redis-server
need redis-cli redis-tools
need gcc gcc
python3 -c "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
  >/dev/null 2>&1 || missing+=("python3-dev")
# WeasyPrint (PDF output) renders through Pango.
need /usr/lib/x86_64-linux-gnu/libpango-1.0.so.0 libpango-1.0-0
need /usr/lib/x86_64-linux-gnu/libpangoft2-1.0.so.0 libpangoft2-1.0-0
# Contract PDFs embed DejaVu, so the same text gives the same PDF on every machine.
need /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present"
  exit 0
fi

echo "system packages missing: ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "Run as root, or install them yourself: apt-get install ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=""
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
