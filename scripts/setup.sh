#!/usr/bin/env bash
# Prepare the development / test environment.  Idempotent and quick when
# everything is already in place.
#
#   scripts/setup.sh                 Python venv (.venv) + the project (editable, with test extras)
#   scripts/setup.sh --with-system   also system packages the tests need (PostgreSQL, chromium, redis-server)
#                                    -- installed with apt-get when running as root
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WITH_SYSTEM=0
for arg in "$@"; do
    case "$arg" in
        --with-system) WITH_SYSTEM=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.ocop-setup-stamp"   # sha256 of pyproject.toml at the last successful install

log()  { echo "[setup] $*"; }
warn() { echo "[setup] WARNING: $*" >&2; }

# ---------------------------------------------------------------------------
# System packages (apt)
# ---------------------------------------------------------------------------
APT_UPDATED=0
can_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Same lookup as testkit/pgserver.py: pg_config --bindir, else /usr/lib/postgresql/*/bin.
pg_server_present() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then return 0; fi
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then return 0; fi
    done
    return 1
}

postgres_user_present() { getent passwd postgres >/dev/null 2>&1; }

ensure_postgres() {
    # The server only needs the postgres user when tests run as root
    # (initdb refuses root), but CI runs as root, so require both there.
    if pg_server_present && postgres_user_present; then
        log "PostgreSQL server binaries: ok"
        return 0
    fi
    if ! can_apt; then
        warn "PostgreSQL server binaries or the 'postgres' user are missing and apt-get is not usable" \
             "(not root?); PostgreSQL tests will not run. Install the 'postgresql' package."
        return 0
    fi
    apt_install postgresql
    # The package creates and may start a default cluster (it normally can't
    # start in containers).  The tests run their own throw-away servers, so
    # make sure the packaged one is not left running.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
            if [ "$status" = "online" ]; then
                pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
            fi
        done || true
    fi
    if ! postgres_user_present; then
        # The package was already installed but the user is gone: recreate it.
        log "creating the postgres system user"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    pg_server_present || { echo "[setup] ERROR: PostgreSQL server binaries still not found" >&2; exit 1; }
}

# The other system packages the tests need, each installed only when missing.
ensure_extra_system_packages() {
    # Browser tests drive Debian's chromium through Playwright (never a
    # downloaded browser).
    if [ -x /usr/bin/chromium ]; then
        log "chromium: ok"
    elif can_apt; then
        apt_install chromium
    else
        warn "chromium is missing and apt-get is not usable; browser tests will be skipped"
    fi
    # The Celery tests start their own private redis-server (testkit/redisserver.py).
    if command -v redis-server >/dev/null 2>&1; then
        log "redis-server: ok"
    elif can_apt; then
        apt_install redis-server
        # The package starts a system-wide server and enables it at boot; the
        # tests never use it (they start their own), so stop and disable it.
        if command -v systemctl >/dev/null 2>&1; then
            systemctl stop redis-server >/dev/null 2>&1 || true
            systemctl disable redis-server >/dev/null 2>&1 || true
        fi
    else
        warn "redis-server is missing and apt-get is not usable; Celery tests will be skipped"
    fi
}

# ---------------------------------------------------------------------------
# Python environment
# ---------------------------------------------------------------------------
ensure_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        return 0
    fi
    if [ -e "$VENV" ]; then
        warn "$VENV is broken; recreating it"
        rm -rf "$VENV"
    fi
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
}

ensure_python_deps() {
    local want have=""
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ "$want" = "$have" ]; then
        log "Python dependencies: up to date"
        return 0
    fi
    log "pip install -e '.[test]'"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]'
    echo "$want" > "$STAMP"
}

# Front-end assets: the message catalogs, and the diagram editor's bundle
# (npm ci from package-lock.json, esbuild into web/static/dist/; skipped by
# scripts/build_frontend.sh when the lock file and sources are unchanged).
ensure_frontend() {
    # Message catalogs: compile the .po files the app ships into .mo files.
    local po
    for po in web/translations/*/LC_MESSAGES/messages.po; do
        [ -e "$po" ] || continue
        if [ ! -e "${po%.po}.mo" ] || [ "$po" -nt "${po%.po}.mo" ]; then
            "$VENV/bin/pybabel" compile -f -i "$po" -o "${po%.po}.mo" >/dev/null
        fi
    done
    # The diagram editor's bundle (bpmn-js): npm ci + esbuild into web/static/dist/.
    if command -v npm >/dev/null 2>&1; then
        bash scripts/build_frontend.sh
    else
        warn "npm is missing; the diagram editor (/modeler/) is not built (install Node.js and npm," \
             "then run scripts/build_frontend.sh)"
    fi
}

# ---------------------------------------------------------------------------
if [ "$WITH_SYSTEM" -eq 1 ]; then
    ensure_postgres
    ensure_extra_system_packages
fi
ensure_venv
ensure_python_deps
ensure_frontend
log "done"
