#!/bin/sh
# Entrypoint of the local PostgreSQL image (make docker-base) that stands in for the official
# postgres image where no registry is reachable; same contract: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, *.sql / *.sh in /docker-entrypoint-initdb.d run once on an empty PGDATA.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "${1:-postgres}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # first-run server on a private socket only, so health checks see nothing until it is done
    initsock=$(mktemp -d)
    pg_ctl --wait --silent -o "-c listen_addresses='' -c unix_socket_directories=$initsock" start
    psql="psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet -h $initsock -U $POSTGRES_USER"
    if [ "$POSTGRES_DB" != postgres ]; then
        $psql -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        # shellcheck disable=SC1090  # sources the mounted init scripts
        case "$f" in
            *.sql) echo "running $f"; $psql -d "$POSTGRES_DB" -f "$f" ;;
            *.sh) echo "running $f"; . "$f" ;;
        esac
    done
    pg_ctl --wait --silent -m fast stop
    rmdir "$initsock"
    echo "database initialised"
fi

if [ "${1:-postgres}" = postgres ]; then
    shift $(( $# > 0 ? 1 : 0 ))
    exec postgres "$@"
fi
exec "$@"
