"""A throw-away PostgreSQL server for the test suite (tests/conftest.py's
``pg_server``, tests/test_faults.py) and the benchmarks (bench/run.py,
bench/http_bench.py, bench/inbox.py, bench/audit_verify.py).

Usage::

    from testkit.pgserver import PostgresServer, available

    reason = available()
    if reason:
        pytest.skip(reason)          # or fail, as the caller prefers
    with PostgresServer() as pg:
        pg.create_database("ocop_test")
        sql_engine = sqlalchemy.create_engine(pg.url("ocop_test"))

Each server gets its own temporary data directory and listens only on a
Unix socket inside that directory (no TCP), so parallel servers can never
clash.  Durability is switched off (fsync, synchronous_commit,
full_page_writes) because the data is discarded anyway.

``initdb`` refuses to run as root.  When the tests run as root (as in CI) the
server is therefore initialised and run as the ``postgres`` system user via
``runuser``; otherwise it runs as the current user.

``halt()`` and ``resume()`` stop and start the same cluster (data, port
and socket kept) for tests of a database outage; ``stop()`` then still
removes everything. The temporary directory, atexit registration,
idempotent start/stop and the wait until the server answers come from
testkit/server.py.

Only the standard library is needed, except for :meth:`create_database`,
:meth:`drop_database` and the readiness check, which use psycopg (imported
lazily).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from urllib.parse import quote

from testkit.server import LocalServer, ServerError, free_port

# The role created by initdb; it is the superuser of the test cluster.
SUPERUSER = "ocop"
# System user that runs the server when we are root.
SYSTEM_USER = "postgres"
# Binaries the server needs.
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")


# --------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------

def _version_key(path: str) -> tuple:
    """Sort key for /usr/lib/postgresql/<version>/bin (numeric versions)."""
    version = os.path.basename(os.path.dirname(path))
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def find_bin_dir() -> str | None:
    """Return the directory holding initdb/pg_ctl/postgres, or None.

    ``pg_config --bindir`` is asked first (it may belong to the client-only
    package, so the result is checked); then the newest
    ``/usr/lib/postgresql/*/bin`` is used.
    """
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            if out:
                candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=_version_key, reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, b), os.X_OK)
               for b in _REQUIRED_BINARIES):
            return directory
    return None


def _running_as_root() -> bool:
    return os.geteuid() == 0


def available() -> str | None:
    """Return None if a server can be started here, else the reason why not."""
    if find_bin_dir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found "
                "via pg_config --bindir or /usr/lib/postgresql/*/bin; "
                "install the 'postgresql' package (scripts/setup.sh --with-system)")
    if _running_as_root():
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return (f"running as root but the '{SYSTEM_USER}' system user does not "
                    "exist (initdb refuses to run as root); install the "
                    "'postgresql' package")
        if shutil.which("runuser") is None:
            return "running as root but 'runuser' is not available"
    return None


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

class PostgresServerError(ServerError):
    """Raised when the server cannot be initialised or started."""


class PostgresServer(LocalServer):
    """A temporary PostgreSQL cluster, started on ``start()`` / ``__enter__``.

    Attributes (valid after start): ``bin_dir``, ``base_dir`` (temp dir,
    removed on stop), ``data_dir`` (also the socket directory), ``port``,
    ``log_path``, ``user`` (the superuser role, ``ocop``).
    """

    error = PostgresServerError
    dir_prefix = "ocop-pg-"

    def __init__(self, port: int | None = None, start_timeout: float = 60.0):
        super().__init__(start_timeout)
        self.port = port
        self.user = SUPERUSER
        self.bin_dir: str | None = None
        self.data_dir: str | None = None
        self._as_root = _running_as_root()

    # -- connection details ------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) over the Unix socket."""
        return (f"postgresql+psycopg://{self.user}@/{quote(dbname, safe='')}"
                f"?host={quote(self.data_dir, safe='/')}&port={self.port}")

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq/psycopg connection string over the Unix socket."""
        return (f"host={self.data_dir} port={self.port} user={self.user} "
                f"dbname={dbname}")

    def connect(self, dbname: str = "postgres", **kwargs):
        """A psycopg connection to ``dbname`` (caller closes it)."""
        import psycopg
        return psycopg.connect(self.conninfo(dbname), **kwargs)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; returns its SQLAlchemy URL."""
        from psycopg import sql
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name``, disconnecting any sessions."""
        from psycopg import sql
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))

    # -- lifecycle (LocalServer.start() and stop() call these) --------------

    def unavailable(self) -> str | None:
        return available()

    def _dir_root(self) -> str | None:
        # /tmp is used directly (not $TMPDIR) to keep the socket path well
        # under the 107-byte Unix socket limit and traversable by postgres.
        return "/tmp" if os.path.isdir("/tmp") else None

    def _configure(self) -> None:
        self.bin_dir = find_bin_dir()
        if self.port is None:
            # The server does not listen on TCP at all (listen_addresses='');
            # the port only names the socket file ``.s.PGSQL.<port>`` in the
            # data directory. A free TCP port is still chosen so that nothing
            # is surprising if someone later enables TCP.
            self.port = free_port()

    def _prepare_dir(self) -> None:
        # Layout:  /tmp/ocop-pg-XXXX/ (0755, ours)
        #            data/         (0700, owned by the server user; also socket dir)
        #            postgres.log  (owned by the server user)
        os.chmod(self.base_dir, 0o755)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.log_path = os.path.join(self.base_dir, "postgres.log")
        os.mkdir(self.data_dir, 0o700)
        open(self.log_path, "a").close()
        if self._as_root:
            pw = pwd.getpwnam(SYSTEM_USER)
            for path in (self.data_dir, self.log_path):
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def _launch(self) -> None:
        self._initdb()
        self._pg_ctl_start()

    def _shutdown(self) -> None:
        """Stop the server immediately (pg_ctl, else SIGQUIT)."""
        if self.data_dir is None:
            return
        pid_file = os.path.join(self.data_dir, "postmaster.pid")
        if os.path.exists(pid_file):
            try:
                self._run([self._bin("pg_ctl"), "stop", "-D", self.data_dir,
                           "-m", "immediate", "-w", "-t", "30"], timeout=60)
            except PostgresServerError:
                self._kill_postmaster(pid_file)

    # -- outages (fault tests) ----------------------------------------------

    @property
    def running(self) -> bool:
        """The postmaster is up (started and not halted)."""
        return self._started and os.path.exists(os.path.join(self.data_dir, "postmaster.pid"))

    def halt(self, mode: str = "fast") -> None:
        """Stop the server but keep its data directory, port and socket path,
        so that ``resume()`` brings the same cluster back where clients
        expect it. ``mode`` is pg_ctl's: "fast" (sessions are terminated,
        open transactions rolled back) or "immediate" (like a crash)."""
        if not self._started:
            raise PostgresServerError("the server was never started")
        if self.running:
            self._run([self._bin("pg_ctl"), "stop", "-D", self.data_dir, "-m", mode, "-w", "-t", "30"],
                      timeout=60)

    def resume(self) -> "PostgresServer":
        """Start a halted server again on the same data directory and socket."""
        if not self._started:
            raise PostgresServerError("the server was never started")
        if not self.running:
            self._pg_ctl_start()
            self._wait_ready()
        return self

    # -- internals ---------------------------------------------------------

    def _bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Run a PostgreSQL tool as the server user; raise with output on failure."""
        if self._as_root:
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        env = dict(os.environ)
        # Don't let the caller's libpq/PG settings leak into the tools.
        for key in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS"):
            env.pop(key, None)
        env.setdefault("LC_ALL", "C")
        try:
            # cwd: the server user must be able to access its working directory
            # (root's cwd is often /root, which postgres cannot enter).
            proc = subprocess.run(argv, cwd=self.base_dir, env=env, timeout=timeout,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True)
        except subprocess.TimeoutExpired as e:
            raise PostgresServerError(
                f"timed out after {timeout}s: {' '.join(argv)}\n{self._log_tail()}") from e
        if proc.returncode != 0:
            raise PostgresServerError(
                f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
                f"{proc.stdout}{proc.stderr}\n{self._log_tail()}")
        return proc

    def _initdb(self) -> None:
        # --no-sync: don't fsync the fresh cluster; --locale=C: independent of
        # whatever locales the machine has (UTF8 encoding is allowed with C).
        self._run([self._bin("initdb"), "-D", self.data_dir, "-A", "trust",
                   "-U", self.user, "-E", "UTF8", "--locale=C", "--no-sync"],
                  timeout=120)

    def _pg_ctl_start(self) -> None:
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        # -w: pg_ctl waits for startup and fails early if the postmaster dies.
        self._run([self._bin("pg_ctl"), "start", "-D", self.data_dir,
                   "-l", self.log_path, "-o", options,
                   "-w", "-t", str(int(self.start_timeout))],
                  timeout=self.start_timeout + 30)

    def _not_ready(self) -> Exception | None:
        """None once a connection runs SELECT 1, else the connection error."""
        import psycopg
        try:
            with psycopg.connect(self.conninfo("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return None
        except psycopg.OperationalError as e:
            return e

    def _timeout_message(self, reason: object | None) -> str:
        return (f"PostgreSQL did not accept connections within {self.start_timeout}s "
                f"(socket dir {self.data_dir}, port {self.port}): {reason}")

    def _kill_postmaster(self, pid_file: str) -> None:
        """Last resort when pg_ctl stop failed: SIGQUIT (immediate shutdown)."""
        try:
            with open(pid_file) as f:
                pid = int(f.readline().strip())
            os.kill(pid, signal.SIGQUIT)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
