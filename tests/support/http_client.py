"""A small HTTP client for tests against a real server on a loopback port
(testkit/gunicorn_server.py), used by tests/test_load.py and
tests/test_faults.py: every request has a timeout, an HTTP error
status is an answer (never an exception), and a cookie jar keeps a browser
session. A lost connection (a killed worker) raises OSError as usual.

    client = HttpClient(server.url, token=secret)
    reply = client.post("/api/v1/tasks/<id>/complete", {"decision": "accept"})
    assert reply.status == 200, reply.text
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar

from demo.seed import DEMO_PASSWORD

TIMEOUT = 60  # seconds; a safety stop, never a measurement
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)


class HttpClient:
    def __init__(self, base_url: str, token: str | None = None, cookies: CookieJar | None = None,
                 timeout: float = TIMEOUT):
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.cookies = cookies if cookies is not None else CookieJar()  # thread-safe: it locks itself
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, body: dict | bytes | None = None,
                headers: dict | None = None) -> Reply:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            data = body
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as err:
            with err:
                return Reply(err.code, dict(err.headers), err.read().decode("utf-8", "replace"))

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict | bytes | None = None, **kwargs) -> Reply:
        return self.request("POST", path, body if body is not None else {}, **kwargs)

    def login(self, username: str, password: str = DEMO_PASSWORD) -> "HttpClient":
        """Sign in through the login form (its CSRF token, then the post);
        the session cookie stays in the jar."""
        page = self.get("/login")
        assert page.status == 200, page.status
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrf_token": _CSRF.search(page.text).group(1)}).encode()
        reply = self.request("POST", "/login", form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        # The redirect after a good login is followed: a page, not the form again.
        assert reply.status == 200 and 'name="password"' not in reply.text, f"login as {username}: {reply.status}"
        return self
