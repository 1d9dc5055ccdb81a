"""Helpers shared by tests/ and bench/: the servers they start (a throw-away
PostgreSQL cluster, a private redis-server, gunicorn serving the product,
all on one server-lifecycle helper in testkit/server.py), the cycle walker
and its form values (testkit/cycle.py), signing in through the login form
(testkit/web_login.py), and the large inbox dataset (testkit/inbox_dataset.py).

tests/ and bench/ share code only through this package: no module under
bench/ depends on tests/, and none under tests/ on bench/. Test-only
helpers live in tests/support/.
"""
