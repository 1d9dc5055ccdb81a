"""Signing in through the real login form of a Flask test client, and the
CSRF token to post forms with. Used by the web tests (tests/) and by the
benchmarks that drive the application in-process (bench/inbox.py,
bench/audit_verify.py); browser sign-in is in tests/support/web_helpers.py."""
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


def signed_in(app, username: str):
    """A test client of the app signed in as a demo user, and its CSRF token."""
    client = app.test_client()
    return client, login(client, username)
