"""Test-only helpers of tests/: what several test modules share (the web
application with test settings, the browser's settings, fake servers,
tampering with the record, shared checks and scenes). Test modules import
from here, never from one another or from conftest.py. Helpers the
benchmarks use too are in testkit/."""
