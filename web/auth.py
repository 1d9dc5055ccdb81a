"""Signing in and out, and who the current user is on every request."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.access import Actor, load_actor
from engine.forms import CONTROL_CHARACTERS
from programme.accounts import authenticate
from storage.db import connection_of
from storage.models import User
from web.context import MAX_ID, db
from web.extensions import limiter, login_manager

auth = Blueprint("auth", __name__)

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
    """The session's user: the engine's Actor (roles per area, producers
    owned), and the session epoch the session was signed in with.

    There is no `id`: the user's id is `actor.user_id` (an int). What
    Flask-Login keeps in the session and in the remember cookie is
    get_id(), "<user id>.<epoch>"."""

    def __init__(self, actor: Actor, username: str, session_epoch: int):
        self.actor = actor
        self.username = username
        self.session_epoch = session_epoch

    def get_id(self) -> str:
        return f"{self.actor.user_id}.{self.session_epoch}"

    def has_role(self, *roles: str) -> bool:
        return any(role == held for held, _area in self.actor.roles for role in roles)

    @property
    def is_producer(self) -> bool:
        return bool(self.actor.producer_ids)

    @property
    def is_officer(self) -> bool:
        return any(area is not None for _role, area in self.actor.roles)


# --- sessions ---------------------------------------------------------------------------------
#
# Sessions are signed cookies: the server keeps no list of them, so signing
# out in one browser cannot by itself end a copy of the cookie taken before
# (by malware, a shared machine, a proxy). Each user row holds a session
# epoch instead; a session names the user and the epoch it was signed in
# with, and the loader accepts it only while the row still has that epoch.
# Signing out adds one to the epoch: every session and remember cookie of the
# user, in every browser, ends at its next request ("sign out everywhere").
# A deactivation does the same, so reactivating an account does not revive
# the sessions it had.

_users = User.__table__
# Built once, plain Core: every signed-in request runs it.
_SESSION_USER = select(_users.c.id, _users.c.username, _users.c.full_name, _users.c.is_active,
                       _users.c.session_epoch).where(_users.c.id == bindparam("user_id"))
_END_SESSIONS = (update(_users).where(_users.c.id == bindparam("user_id"))
                 .values(session_epoch=_users.c.session_epoch + 1))
_SESSION_KEY = re.compile(r"([0-9]{1,10})\.([0-9]{1,10})")


def session_key(value) -> tuple[int, int] | None:
    """(user id, epoch) of a session's "<user id>.<epoch>", or None for
    anything else: ASCII digits only, in the exact form get_id() writes (no
    sign, space or leading zero), the id within 1..MAX_ID and the epoch
    within 0..MAX_ID. A session from before epochs ("<user id>" alone) is
    None too: it counts as signed out."""
    match = _SESSION_KEY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    user_id, epoch = int(match[1]), int(match[2])
    if not 0 < user_id <= MAX_ID or epoch > MAX_ID or value != f"{user_id}.{epoch}":
        return None
    return user_id, epoch


def end_sessions(session: Session | Connection, user_id: int) -> None:
    """End every web session and remember cookie of the user, in the
    caller's transaction (one UPDATE; nothing to do for a missing user)."""
    connection = connection_of(session)
    connection.execute(_END_SESSIONS, {"user_id": user_id})


def signed_in_user(session: Session, user: User) -> SignedInUser:
    """The session user for an active account just read or created in
    `session` (signing in, a producer's own registration)."""
    return SignedInUser(load_actor(session, user.id, user.full_name), user.username, user.session_epoch)


@login_manager.user_loader
def load_user(session_id: str) -> SignedInUser | None:
    """The user a session (or remember cookie) names, or None (a signed-out
    visitor): a malformed value, a missing or deactivated user, or an epoch
    the user has since left (signed out, deactivated)."""
    key = session_key(session_id)
    if key is None:
        return None
    user_id, epoch = key
    with db().statements() as connection:
        row = connection.execute(_SESSION_USER, {"user_id": user_id}).first()
        if row is None or not row.is_active or row.session_epoch != epoch:
            return None
        return SignedInUser(load_actor(connection, user_id, row.full_name), row.username, row.session_epoch)


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if request.method == "POST":
        username = request.form.get("username", "")
        signed_in = None
        if not CONTROL_CHARACTERS.search(username):  # no username has them; a NUL breaks the query
            with db().transaction() as session:
                user = authenticate(session, username, request.form.get("password", ""))
                signed_in = signed_in_user(session, user) if user else None
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
    """Sign out everywhere: this browser's session, and every other session
    and remember cookie of the user (see end_sessions)."""
    with db().transaction() as session:
        end_sessions(session, current_user.actor.user_id)
    logout_user()
    g.pop("_login_user", None)
    return redirect(url_for("auth.login"))
