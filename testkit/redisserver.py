"""A throw-away Redis server for the test suite (tests/conftest.py's
``redis_url``, the broker of tests/test_celery.py).

Usage::

    from testkit.redisserver import RedisServer, available

    reason = available()
    if reason:
        pytest.skip(reason)          # or fail, as the caller prefers
    with RedisServer() as redis:
        broker_url = redis.url()

Debian's ``redis-server`` runs as a child process we own (not daemonized),
on a free loopback port, in its own temporary directory, with persistence
off, and is terminated on ``stop()``. The lifecycle (directory, atexit,
idempotent start/stop, waiting for PONG) comes from testkit/server.py.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess

from testkit.server import LocalServer, ServerError, free_port

BINARY = "redis-server"


def available() -> str | None:
    """Return None if a server can be started here, else the reason why not."""
    if shutil.which(BINARY) is None:
        return (f"'{BINARY}' not found on PATH; install Debian's 'redis-server' package "
                "(scripts/setup.sh --with-system)")
    return None


class RedisServerError(ServerError):
    """Raised when the server cannot be started."""


class RedisServer(LocalServer):
    """A private redis-server on a free loopback port; ``url()`` is its
    broker URL, ``ping()`` whether it answers."""

    error = RedisServerError
    dir_prefix = "ocop-redis-"
    poll_interval = 0.05

    def __init__(self, start_timeout: float = 20.0):
        super().__init__(start_timeout)
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        """PING over a raw socket (the inline protocol), so that the check
        needs no client library."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    # -- lifecycle (LocalServer.start() and stop() call these) --------------

    def unavailable(self) -> str | None:
        return available()

    def _configure(self) -> None:
        self.port = free_port()

    def _prepare_dir(self) -> None:
        self.log_path = os.path.join(self.base_dir, "redis.log")

    def _launch(self) -> None:
        argv = [shutil.which(BINARY), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.base_dir, "--logfile", self.log_path,
                "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _not_ready(self) -> str | None:
        if self._process.poll() is not None:
            raise RedisServerError(f"redis-server exited with {self._process.returncode}\n{self._log_tail()}")
        return None if self.ping() else "no PONG"

    def _timeout_message(self, reason: object | None) -> str:
        return f"redis-server did not answer PING within {self.start_timeout}s"

    def _shutdown(self) -> None:
        """Terminate the server (kill it after 10 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
