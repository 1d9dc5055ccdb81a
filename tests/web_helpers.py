"""Signing in through the real login form, and posting with its CSRF token."""
from __future__ import annotations

import re

from engine.demo import DEMO_PASSWORD

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
