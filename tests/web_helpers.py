"""Signing in through the real login form, and posting with its CSRF token."""
from __future__ import annotations

import re

from demo.seed import DEMO_PASSWORD

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return _TOKEN.search(page).group(1)


def login(client, username: str, password: str = DEMO_PASSWORD) -> str:
    """Sign in as a demo user; returns the CSRF token to post forms with."""
    token = csrf_token(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, f"login as {username} failed: {response.status_code}"
    return csrf_token(client)


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
    import os
    from pathlib import Path

    import pytest
    bundle = Path(__file__).resolve().parent.parent / "web" / "static" / "dist" / name
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
