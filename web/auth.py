"""Signing in and out, and who the current user is on every request."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user

from engine.access import Actor, load_actor
from engine.accounts import authenticate
from engine.forms import CONTROL_CHARACTERS
from web.extensions import limiter, login_manager

auth = Blueprint("auth", __name__)

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


@auth.before_app_request
def _plausible_path_arguments():
    """Every page and the API: a path argument that cannot name anything is
    a 404 before it reaches a query: an integer past MAX_ID, a text with
    control characters (PostgreSQL refuses a NUL in any query)."""
    for value in (request.view_args or {}).values():
        if (isinstance(value, int) and value > MAX_ID) or (
                isinstance(value, str) and CONTROL_CHARACTERS.search(value)):
            abort(404)


class SignedInUser(UserMixin):
    """The session's user: the engine's Actor (roles per area, producers owned)."""

    def __init__(self, actor: Actor, username: str):
        self.actor = actor
        self.username = username
        self.id = str(actor.user_id)

    def has_role(self, *roles: str) -> bool:
        return any(role == held for held, _area in self.actor.roles for role in roles)

    @property
    def is_producer(self) -> bool:
        return bool(self.actor.producer_ids)

    @property
    def is_officer(self) -> bool:
        return any(area is not None for _role, area in self.actor.roles)


def db():
    return current_app.extensions["ocop_engine"].db


def engine():
    return current_app.extensions["ocop_engine"]


@login_manager.user_loader
def load_user(user_id: str):
    from storage.models import User
    with db().transaction() as session:
        user = session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None or not user.is_active:
            return None
        return SignedInUser(load_actor(session, user.id), user.username)


def actor() -> Actor:
    return current_user.actor


def require_role(*roles: str) -> None:
    if not current_user.is_authenticated or not current_user.has_role(*roles):
        abort(403)


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if request.method == "POST":
        username = request.form.get("username", "")
        signed_in = None
        if not CONTROL_CHARACTERS.search(username):  # no username has them; a NUL breaks the query
            with db().transaction() as session:
                user = authenticate(session, username, request.form.get("password", ""))
                signed_in = SignedInUser(load_actor(session, user.id), user.username) if user else None
        if signed_in is None:
            flash(_("Wrong username or password."), "error")
            return render_template("login.html"), 401
        login_user(signed_in)
        target = request.args.get("next", "")
        if not _local_path(target):
            target = url_for("public.home")
        return redirect(target)
    return render_template("login.html")


def _local_path(target: str) -> bool:
    """Only a path of this site: never redirect to another host after login.
    Browsers read a backslash as a slash and drop tabs and newlines, so
    "/\\evil.example" or "/<tab>/evil.example" would mean "//evil.example"."""
    if not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@auth.post("/logout")
@login_required
def logout():
    logout_user()
    g.pop("_login_user", None)
    return redirect(url_for("auth.login"))
