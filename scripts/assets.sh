#!/usr/bin/env bash
# Front-end assets served by the app itself (no CDN at page load). Filled by the maps work.
set -euo pipefail
exit 0
