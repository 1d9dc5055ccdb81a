"""The browser tests' helpers (Playwright pages): signing in through the
login page, skipping a test whose front-end bundle was not built, and
collecting a page's console errors. Used by tests/test_browser*.py and
tests/test_dashboard.py. Signing in a Flask test client is
testkit/web_login.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from demo.seed import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def sign_in_browser(page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login page in a Playwright page."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, f"{username} could not sign in"


def require_bundle(name: str) -> None:
    """Skip (fail in CI) a browser test whose front-end bundle was not built."""
    bundle = ROOT / "web" / "static" / "dist" / name
    if not bundle.is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must build the front end (bash scripts/build_frontend.sh)")
        pytest.skip(f"web/static/dist/{name} is not built")


def page_errors(page) -> list[str]:
    """The console errors and uncaught exceptions the page will have (the
    list fills as the test runs); a missing favicon does not count."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and "favicon" not in msg.location.get("url", "") else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    return problems
