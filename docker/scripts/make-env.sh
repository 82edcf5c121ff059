#!/usr/bin/env bash
# Write an env file for docker/compose.yaml (default docker/.env) from docker/.env.example with
# freshly generated secrets; never overwrites one. --local: use the locally made base images and
# the wheelhouse (machines without a container registry or package index).
#   make-env.sh [--local] [FILE]
set -euo pipefail

DOCKER=$(cd "$(dirname "$0")/.." && pwd)
local_images=0
if [ "${1:-}" = --local ]; then local_images=1; shift; fi
OUT=${1:-$DOCKER/.env}
if [ -e "$OUT" ]; then
    echo "make-env: $OUT exists; left as it is" >&2
    exit 0
fi
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
umask 077
sed -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret)/" \
    -e "s/^DLAB_API_TOKENS=$/DLAB_API_TOKENS=$(secret)/" \
    -e "s/^RAY_AUTH_TOKEN=$/RAY_AUTH_TOKEN=$(secret)/" \
    "$DOCKER/.env.example" > "$OUT"
if [ "$local_images" = 1 ]; then
    sed -i -e 's/^# \(BASE_IMAGE=\)/\1/' -e 's/^# \(POSTGRES_IMAGE=\)/\1/' -e 's/^# \(WHEEL_SOURCE=\)/\1/' "$OUT"
fi
echo "make-env: wrote $OUT (mode 600); the API token for clients: DLAB_API_TOKEN=$(sed -n 's/^DLAB_API_TOKENS=//p' "$OUT")" >&2
