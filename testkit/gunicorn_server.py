"""The product as it runs in production, for the load and fault tests
(tests/test_load.py, tests/test_faults.py) and the HTTP and memory
benchmarks (bench/http_bench.py, bench/memory.py): gunicorn serving
web.wsgi:app on a loopback port, in its own process group, against a
database the caller prepared.

    with GunicornServer(database_url, tmp_path, workers=2) as server:
        urllib.request.urlopen(server.url + "/healthz")

Background jobs are off (OCOP_EMBEDDED_WORKER=0) so that only requests
move instances, and the login rate limit is off (OCOP_RATELIMIT=0) because
every client comes from 127.0.0.1. `worker_pids()` lists the worker
processes (to kill one); `stop()` ends the whole group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from testkit.server import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


class GunicornServer:
    def __init__(self, database_url: str, workdir: Path, workers: int = 2, threads: int = 4,
                 env: dict | None = None, audit_key_file: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"gunicorn-{self.port}.log"
        self.env = dict(os.environ, OCOP_DATABASE_URL=database_url, OCOP_EMBEDDED_WORKER="0",
                        OCOP_RATELIMIT="0", OCOP_UPLOAD_DIR=str(self.workdir / "uploads"),
                        PYTHONPATH=str(ROOT), **(env or {}))
        if audit_key_file:
            self.env["OCOP_AUDIT_KEY_FILE"] = audit_key_file
        self.command = [str(GUNICORN), "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                        "--threads", str(threads), "--graceful-timeout", "5", "--timeout", "60",
                        "web.wsgi:app"]
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "GunicornServer":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout} s:\n{self.log()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn arbiter)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
