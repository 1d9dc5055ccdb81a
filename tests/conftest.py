"""Fixtures: a database per test on SQLite and on a real PostgreSQL server
(started once per session in a temporary directory), the engine on a fake
clock, and the demo world (areas, officers, producers, diagrams, outreach).
Only fixtures (and the fake clock they use) live here; what test modules
import is in tests/support/ and testkit/."""
from __future__ import annotations

import os
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from demo.seed import run_outreach, seed_areas_and_people
from engine.bpmn_engine import BpmnEngine
from engine.clock import MovableClock
from engine.driver import Driver
from engine.samples import SampleDecider
from programme.definitions import deploy_bundled
from storage.db import Database
from storage.migrate import upgrade
from testkit import pgserver, redisserver
from tests.support.app import make_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.services import require

BACKENDS = ["sqlite", "postgresql"]


class FakeClock(MovableClock):
    """Time the tests control: starts on a weekday morning in March 2026."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)):
        super().__init__(start)

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="session", autouse=True)
def audit_signing_key(tmp_path_factory):
    """The key `ocop init` creates, and checkpoints use, in a temporary
    directory rather than the working copy's instance/."""
    path = tmp_path_factory.mktemp("keys") / "audit_signing_key.pem"
    previous = os.environ.get("OCOP_AUDIT_KEY_FILE")
    os.environ["OCOP_AUDIT_KEY_FILE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("OCOP_AUDIT_KEY_FILE", None)
    else:
        os.environ["OCOP_AUDIT_KEY_FILE"] = previous


@pytest.fixture(scope="session")
def pg_server():
    require("PostgreSQL", pgserver.available())
    with pgserver.PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url():
    """A private Redis server on a loopback port, for the Celery tests."""
    require("Redis", redisserver.available())
    with redisserver.RedisServer() as server:
        yield server.url()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ocop.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    upgrade(database.sql_engine)
    yield database
    database.dispose()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def engine(db, clock):
    return BpmnEngine(db, clock=clock)


@pytest.fixture
def world(engine):
    """Demo areas and people, both diagrams deployed (two-tier active for
    Lào Cai), and idea registration open everywhere."""
    seed_areas_and_people(engine)
    deploy_bundled(engine)
    run_outreach(engine, Driver(engine, SampleDecider(random.Random(0), accept_rate=1.0)))
    return engine


@pytest.fixture
def app(world, db_url, tmp_path):
    """The web application on the test database, with the demo world."""
    return make_app(world, db_url, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_server(world, db_url, tmp_path):
    """The app served over real HTTP on a loopback port, in a thread. Many
    people sign in from one address here, so the login rate limit is off."""
    import threading

    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no downloaded browsers)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (scripts/setup.sh --with-system installs it)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="vi-VN")
    tab = context.new_page()
    tab.set_default_timeout(15000)
    yield tab
    context.close()
