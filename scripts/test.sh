#!/usr/bin/env bash
# Run the test suite: set up everything it needs (incl. system packages),
# check the import contract (lint-imports, pyproject.toml), then pytest.
# Arguments go to pytest (default: -q). Exit code is pytest's, except that
# "no tests collected" (pytest exit 5) and a broken import contract count
# as failures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --with-system

echo "[test] import contract (lint-imports)"
.venv/bin/lint-imports

if [ "$#" -eq 0 ]; then set -- -q; fi
rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests (exit 5); treating that as a failure" >&2
    exit 1
fi
exit "$rc"
