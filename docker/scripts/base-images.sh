#!/usr/bin/env bash
# Base images for a machine that reaches no container registry (as root; Debian's package
# mirror must be reachable): made with debootstrap, imported with `docker import`.
#   BASE_IMAGE      Debian bookworm with Python 3.11 and venv, libEGL/libGL: docker/Dockerfile's
#                   BASE_IMAGE build argument (in place of python:3.11-slim)
#   POSTGRES_IMAGE  the same plus PostgreSQL 15 and an entrypoint with the official postgres
#                   image's contract (scripts/postgres-entrypoint.sh): compose's POSTGRES_IMAGE
# Each is made once and kept in the engine; it is made again when this script or the entrypoint
# changes (a label records their hash) or with FORCE=1.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-dendrite-lab/base:bookworm}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-dendrite-lab/postgres:15-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=$(cat "$HERE/base-images.sh" "$HERE/postgres-entrypoint.sh" | sha256sum | cut -c1-16)
LABEL=org.dendrite-lab.recipe

log() { echo "base-images: $*" >&2; }

current() {  # the image exists and was made by this recipe
    [ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$RECIPE" ]
}

if [ "${FORCE:-0}" != 1 ] && current "$BASE_IMAGE" && current "$POSTGRES_IMAGE"; then
    log "up to date: $BASE_IMAGE, $POSTGRES_IMAGE"
    exit 0
fi
[ "$(id -u)" = 0 ] || { log "debootstrap and chroot need root"; exit 3; }
if ! command -v debootstrap >/dev/null; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
fi

WORK=$(mktemp -d /var/tmp/dlab-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

slim() {  # what a container never reads: package caches and lists, docs, man pages, locales
    rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/man/* \
        "$1"/usr/share/info/* "$1"/usr/share/locale/* "$1"/var/log/*.log "$1"/tmp/*
    find "$1"/usr/share/doc -type f ! -name copyright -delete
}

# 1. Python: what docker/Dockerfile's stages need from python:3.11-slim, plus libEGL/libGL
start=$SECONDS
debootstrap --variant=minbase \
    --include=python3,python3-venv,libegl1,libgl1,ca-certificates \
    "$SUITE" "$WORK/python" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
log "debootstrap: $((SECONDS - start)) s"

# 2. PostgreSQL on top of a copy (chroot apt-get; no cluster is created, nothing is started)
start=$SECONDS
cp -a "$WORK/python" "$WORK/postgres"
PG="$WORK/postgres"
printf '#!/bin/sh\nexit 101\n' > "$PG/usr/sbin/policy-rc.d"
chmod 0755 "$PG/usr/sbin/policy-rc.d"
mkdir -p "$PG/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' > "$PG/etc/postgresql-common/createcluster.d/dlab.conf"
chroot "$PG" /bin/sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends postgresql-15' > "$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log" >&2; exit 1; }
rm -f "$PG/usr/sbin/policy-rc.d"
install -m 0755 "$HERE/postgres-entrypoint.sh" "$PG/usr/local/bin/docker-entrypoint.sh"
mkdir -p "$PG/docker-entrypoint-initdb.d"
chroot "$PG" /bin/sh -c 'install -d -m 0700 -o postgres -g postgres /var/lib/postgresql/data \
    && install -d -m 2775 -o postgres -g postgres /var/run/postgresql'
log "postgresql: $((SECONDS - start)) s"

slim "$WORK/python"
slim "$WORK/postgres"

start=$SECONDS
tar -C "$WORK/python" -c . | docker import \
    --change "LABEL $LABEL=$RECIPE" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
tar -C "$WORK/postgres" -c . | docker import \
    --change "LABEL $LABEL=$RECIPE" \
    --change 'ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'USER postgres' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    - "$POSTGRES_IMAGE" >/dev/null
log "docker import: $((SECONDS - start)) s"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${BASE_IMAGE}|${POSTGRES_IMAGE}) " >&2 || true
