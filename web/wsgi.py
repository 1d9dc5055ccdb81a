"""WSGI entry point for gunicorn: `gunicorn web.wsgi:app`.

Without a broker (OCOP_BROKER_URL unset) each web process also runs the
background jobs on their schedule in a thread (background/worker.py): the
embedded default needs no other service. OCOP_EMBEDDED_WORKER=0 turns it
off (e.g. when `ocop worker` runs as its own service).
"""
import os

from background.worker import start_in_thread
from web.app import create_app

app = create_app()
if not os.environ.get("OCOP_BROKER_URL") and os.environ.get("OCOP_EMBEDDED_WORKER", "1") != "0":
    start_in_thread(app.extensions["ocop_engine"])
