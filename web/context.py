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

from flask import abort, current_app, request
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from storage.db import Database

# Ids are 32-bit integers in both databases: a larger one names nothing
# (and a query with it fails: SQLite cannot bind it, PostgreSQL refuses it).
MAX_ID = 2**31 - 1
# A page past the last is empty; one past this would ask the database for
# an offset it cannot take.
MAX_PAGE = 100_000
_ID_TEXT = re.compile(r"[0-9]{1,10}")
# ASCII digits, few enough that int() is cheap and no range check overflows.
_NUMBER_TEXT = re.compile(r"[0-9]{1,19}")


def id_from(text: str) -> int | None:
    """The id a form or query value names, or None: ASCII digits only (not
    "²" or "١٢", which str.isdigit accepts) and within MAX_ID."""
    text = text.strip()
    if not _ID_TEXT.fullmatch(text) or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


class BadQueryValue(BadRequest):
    """A query parameter a page cannot use: 400, saying what is wrong in
    both languages (web/errors.py; error pages do not depend on the
    session's language). Quietly dropping it would show a page that looks
    filtered and is not."""

    def __init__(self, vietnamese: str, english: str):
        self.vietnamese, self.english = vietnamese, english
        super().__init__(english)


def _bad_number(name: str, minimum: int, maximum: int) -> BadQueryValue:
    # A number past 64 bits fails to bind in SQLite, past 32 bits PostgreSQL refuses it.
    return BadQueryValue(f"Tham số “{name}” trong địa chỉ phải là số nguyên từ {minimum} đến {maximum}.",
                         f"The parameter “{name}” in the address must be a whole number "
                         f"from {minimum} to {maximum}.")


def query_int(name: str, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """The request's query parameter `name` as an integer in [minimum,
    maximum]; None when it is absent or empty (a form's "all" choice).
    Every integer a page reads from the query string comes through here;
    anything else (a sign, "²", a 30-digit number) is a BadQueryValue."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not _NUMBER_TEXT.fullmatch(text) or not minimum <= int(text) <= maximum:
        raise _bad_number(name, minimum, maximum)
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
