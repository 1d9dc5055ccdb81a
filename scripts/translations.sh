#!/usr/bin/env bash
# Refresh the English catalog after UI text changed. Message ids are the
# Vietnamese strings (Vietnamese first); web/translations/en/.../messages.po
# holds their English. Fill in new entries (empty msgstr), then run
# scripts/setup.sh, which compiles the catalogs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p web/translations
.venv/bin/pybabel extract -F web/babel.cfg -k _ -k _l -k gettext -k lazy_gettext -o web/translations/messages.pot --no-location --sort-output .
if [ -e web/translations/en/LC_MESSAGES/messages.po ]; then
    .venv/bin/pybabel update -i web/translations/messages.pot -d web/translations -l en --no-fuzzy-matching
else
    .venv/bin/pybabel init -i web/translations/messages.pot -d web/translations -l en
fi
grep -c '^msgstr ""$' web/translations/en/LC_MESSAGES/messages.po | xargs echo "entries (incl. header) still without English:"
