"""The lifecycle every throw-away server of the tests and benchmarks shares:
a temporary directory of its own, registration with atexit (so a forgotten
server still goes away), idempotent start and stop, the context-manager
protocol, waiting until the server answers (with a timeout, the log's last
lines in the error), and `free_port()`.

Subclasses: testkit/pgserver.py (PostgresServer) and testkit/redisserver.py
(RedisServer); `free_port()` is also used by testkit/gunicorn_server.py and
tests/support/smtpserver.py.

A subclass says how to launch and stop its process; the order is

    start():  unavailable()? -> _configure() -> temporary directory -> _prepare_dir()
              -> _launch() -> wait until _not_ready() is None
    stop():   _shutdown() -> temporary directory removed

and a failure anywhere after the directory exists stops the server again.
"""
from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import time


def free_port() -> int:
    """A loopback TCP port nobody is listening on (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerError(RuntimeError):
    """Raised when a server cannot be started."""


class LocalServer:
    """One server process in a temporary directory, started by ``start()`` /
    ``__enter__`` and removed with its directory by ``stop()`` / ``__exit__``.

    Attributes (valid after start): ``base_dir`` (the temporary directory,
    removed on stop) and ``log_path`` (set by the subclass).
    """

    #: The exception a subclass raises (a subclass of ServerError).
    error: type[ServerError] = ServerError
    #: Prefix of the temporary directory's name.
    dir_prefix = "ocop-server-"
    #: Seconds between two readiness checks.
    poll_interval = 0.1

    def __init__(self, start_timeout: float):
        self.start_timeout = start_timeout
        self.base_dir: str | None = None
        self.log_path: str | None = None
        self._started = False

    # -- context manager ---------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """Start the server (once: a started server is returned as it is)."""
        if self._started:
            return self
        reason = self.unavailable()
        if reason:
            raise self.error(reason)
        self._configure()
        self.base_dir = tempfile.mkdtemp(prefix=self.dir_prefix, dir=self._dir_root())
        # From here on, clean up if anything fails (and at interpreter exit
        # if the caller forgets to stop us).
        self._started = True
        atexit.register(self.stop)
        try:
            self._prepare_dir()
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete its directory. Idempotent."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        try:
            self._shutdown()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _wait_ready(self) -> None:
        """Check until the server answers, or raise after ``start_timeout`` seconds."""
        deadline = time.monotonic() + self.start_timeout
        reason = None
        while time.monotonic() < deadline:
            reason = self._not_ready()
            if reason is None:
                return
            time.sleep(self.poll_interval)
        raise self.error(f"{self._timeout_message(reason)}\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        """The server log's last lines, for error messages."""
        try:
            with open(self.log_path, errors="replace") as f:
                tail = f.readlines()[-lines:]
        except (OSError, TypeError):
            return "(no server log)"
        return f"--- last lines of {self.log_path} ---\n" + "".join(tail)

    # -- what a subclass provides ----------------------------------------------

    def unavailable(self) -> str | None:
        """None if the server can be started here, else the reason why not."""
        return None

    def _dir_root(self) -> str | None:
        """Where the temporary directory goes (None: tempfile's default)."""
        return None

    def _configure(self) -> None:
        """Before the directory exists: binaries, port."""

    def _prepare_dir(self) -> None:
        """Lay out the temporary directory (``self.base_dir``); set ``log_path``."""

    def _launch(self) -> None:
        """Start the server process."""
        raise NotImplementedError

    def _not_ready(self) -> object | None:
        """None once the server answers, else why not yet (shown on timeout).
        Raise ``self.error`` when waiting longer cannot help."""
        raise NotImplementedError

    def _timeout_message(self, reason: object | None) -> str:
        return f"the server did not answer within {self.start_timeout}s: {reason}"

    def _shutdown(self) -> None:
        """Stop the server process (the directory is removed afterwards)."""
        raise NotImplementedError
