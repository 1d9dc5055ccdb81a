"""The web application on a test database with the demo world, as the `app`
fixture of tests/conftest.py builds it; for the tests that need their own
settings (rate limit off, production environment, ...): the authorization
matrix, the security, audit-page and form-fuzzing tests."""
from __future__ import annotations


def make_app(world, db_url, tmp_path, **overrides):
    from web.app import create_app
    from web.extensions import limiter
    application = create_app(db_url, testing=True,
                             overrides={"UPLOAD_DIR": str(tmp_path / "uploads"), **overrides})
    application.extensions["ocop_engine"].clock = world.clock
    if application.config.get("RATELIMIT_ENABLED", True):
        limiter.reset()
    return application
