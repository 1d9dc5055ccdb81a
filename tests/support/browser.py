"""The browser tests' chromium (Debian's, driven by Playwright) and where
their screenshots go. Used by tests/conftest.py's `browser` fixture and by
the tests that save screenshots (tests/test_browser*.py, test_dashboard.py,
test_web_modeler.py)."""
from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
# tests/artifacts/ (ignored by git)
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")
