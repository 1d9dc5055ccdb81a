"""Real services the tests start (PostgreSQL, Redis): `require()`
skips a test locally when one is missing and fails it in CI. Used by
tests/conftest.py's server fixtures and tests/test_faults.py."""
from __future__ import annotations

import os

import pytest


def require(service: str, missing_reason: str | None) -> None:
    """A real service the tests need: in CI its absence fails, locally it skips."""
    if missing_reason:
        if os.environ.get("CI"):
            pytest.fail(f"{service} is required in CI: {missing_reason}")
        pytest.skip(f"{service} not available: {missing_reason}")
