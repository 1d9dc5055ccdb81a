#!/usr/bin/env bash
# Build the diagram editor's front end into web/static/dist/ (ignored by git):
#   - npm ci when node_modules is missing or package-lock.json is newer;
#   - esbuild bundles web/static/src/modeler.js -> web/static/dist/modeler.js
#     web/static/src/compare.js (the version comparison viewer) -> dist/compare.js
#     and web/static/src/history.js (the auditor's history viewer) -> dist/history.js;
#   - the bpmn-js style sheets and the bpmn icon font are copied beside it.
# Quick when nothing changed. Needs node and npm (the npm registry for npm ci).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "[frontend] $*"; }

command -v npm >/dev/null 2>&1 || { echo "[frontend] ERROR: npm is not installed" >&2; exit 1; }

STAMP=node_modules/.ocop-lock-stamp
if [ ! -d node_modules ] || [ ! -e "$STAMP" ] || [ package-lock.json -nt "$STAMP" ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    touch "$STAMP"
fi

DIST=web/static/dist
ASSETS=node_modules/bpmn-js/dist/assets
OUT="$DIST/modeler.js"
COMPARE="$DIST/compare.js"
HISTORY="$DIST/history.js"

# Rebuild when the bundle is missing or older than a source or the lock file.
stale=0
if [ ! -e "$OUT" ] || [ ! -e "$COMPARE" ] || [ ! -e "$HISTORY" ] || [ package-lock.json -nt "$OUT" ] || [ "$0" -nt "$OUT" ]; then
    stale=1
elif [ -n "$(find web/static/src -name '*.js' -newer "$OUT" -print -quit)" ]; then
    stale=1
fi

if [ "$stale" -eq 1 ]; then
    log "esbuild web/static/src/{modeler,compare,history}.js -> $OUT, $COMPARE, $HISTORY"
    mkdir -p "$DIST"
    npx --no-install esbuild web/static/src/modeler.js web/static/src/compare.js web/static/src/history.js --bundle --minify --sourcemap \
        --format=iife --target=es2020 --legal-comments=linked --log-level=warning \
        --outdir="$DIST"
    rm -rf "$DIST/bpmn-font"
    mkdir -p "$DIST/bpmn-font/css" "$DIST/bpmn-font/font"
    cp "$ASSETS/diagram-js.css" "$ASSETS/bpmn-js.css" "$DIST/"
    cp "$ASSETS/bpmn-font/css/bpmn.css" "$DIST/bpmn-font/css/"
    cp "$ASSETS"/bpmn-font/font/* "$DIST/bpmn-font/font/"
else
    log "up to date"
fi
