#!/usr/bin/env bash
# Write a development .env (DEBUG=1 and a random secret key) unless one already exists.
# config/settings.py reads it, so `.venv/bin/python manage.py ...` works exactly as the README
# shows. Production never uses this file: it sets DEBUG=0, SECRET_KEY and ALLOWED_HOSTS in
# its own environment (and .dockerignore keeps it out of the image).
set -euo pipefail

target="${1:-.env}"
if [[ -e "$target" ]]; then
  exit 0
fi
key="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')"
umask 077
cat >"$target" <<ENV
# Development only, written by scripts/dev-env.sh (make). Delete it to get a new key.
# Variables set in the environment win over this file; the others are in .env.example.
DEBUG=1
SECRET_KEY=$key
ENV
echo "Wrote $target (development: DEBUG=1 and a random SECRET_KEY)"
