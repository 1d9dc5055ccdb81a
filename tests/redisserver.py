"""A throw-away Redis server for the test suite.

Usage::

    from tests.redisserver import RedisServer, available

    reason = available()
    if reason:
        pytest.skip(reason)          # or fail, as the caller prefers
    with RedisServer() as redis:
        broker_url = redis.url()

Debian's ``redis-server`` runs as a child process we own (not daemonized),
on a free loopback port, in its own temporary directory, with persistence
off, and is terminated on ``stop()``.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

BINARY = "redis-server"


def available() -> str | None:
    """Return None if a server can be started here, else the reason why not."""
    if shutil.which(BINARY) is None:
        return (f"'{BINARY}' not found on PATH; install Debian's 'redis-server' package "
                "(scripts/setup.sh --with-system)")
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServerError(RuntimeError):
    """Raised when the server cannot be started."""


class RedisServer:
    def __init__(self, start_timeout: float = 20.0):
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.base_dir: str | None = None
        self.log_path: str | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        if self._process is not None:
            return self
        reason = available()
        if reason:
            raise RedisServerError(reason)
        self.port = _free_port()
        self.base_dir = tempfile.mkdtemp(prefix="ocop-redis-")
        self.log_path = os.path.join(self.base_dir, "redis.log")
        argv = [shutil.which(BINARY), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.base_dir, "--logfile", self.log_path,
                "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the server and delete its directory. Idempotent."""
        if self._process is None:
            return
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def ping(self) -> bool:
        """PING over a raw socket (the inline protocol), so that the check
        needs no client library."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisServerError(f"redis-server exited with {self._process.returncode}\n{self._log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RedisServerError(f"redis-server did not answer PING within {self.start_timeout}s\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no server log)"
