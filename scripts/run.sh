#!/usr/bin/env bash
# Set up, initialise the database with demo data, and start the web app.
# Arguments go to `ocop serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
.venv/bin/ocop init --demo
exec .venv/bin/ocop serve "$@"
