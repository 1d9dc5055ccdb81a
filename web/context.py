"""What every request handler uses: the database, the BPMN engine, the
signed-in user's actor, a read-only unit of work for pages, and the checks
of path and form values that name rows.

Pages read through the query functions of the programme, audit and
background packages inside `reading()` (always rolled back, so nothing a
page does is ever written); every change goes through a use case, which
opens its own transaction.
"""
from __future__ import annotations

import re
from contextlib import AbstractContextManager

from flask import abort, current_app
from flask_login import current_user
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from storage.db import Database

# Ids are 32-bit integers in both databases: a larger one names nothing
# (and a query with it fails: SQLite cannot bind it, PostgreSQL refuses it).
MAX_ID = 2**31 - 1
_ID_TEXT = re.compile(r"[0-9]{1,10}")


def id_from(text: str) -> int | None:
    """The id a form or query value names, or None: ASCII digits only (not
    "²" or "١٢", which str.isdigit accepts) and within MAX_ID."""
    text = text.strip()
    if not _ID_TEXT.fullmatch(text) or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def bpmn_engine() -> BpmnEngine:
    return current_app.extensions["ocop_engine"]


def db() -> Database:
    return bpmn_engine().db


def reading() -> AbstractContextManager[Session]:
    """A read-only unit of work for one page (engine.db.Database.reading)."""
    return db().reading()


def actor() -> Actor:
    return current_user.actor


def require_role(*roles: str) -> None:
    if not current_user.is_authenticated or not current_user.has_role(*roles):
        abort(403)
