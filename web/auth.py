"""Signing in and out, and who the current user is on every request: the
sign-in page, sign-out, the session user loader, and the check of path
arguments every page and the API share. Accounts, passwords and the
session epoch are programme.accounts'."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.forms import CONTROL_CHARACTERS
from programme.accounts import SessionAccount, authenticate, live_session_account, session_account, sign_out
from storage.models import User
from web.context import MAX_ID, db, reading
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

    @classmethod
    def of(cls, account: SessionAccount) -> SignedInUser:
        return cls(account.actor, account.username, account.session_epoch)

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
# A session names the user and the session epoch it was signed in with
# (programme.accounts: signing out or a deactivation moves the epoch on and
# so ends every copy of every session of the user).

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


def signed_in_user(session: Session, user: User) -> SignedInUser:
    """The session user for an active account just read or created in
    `session` (signing in, a producer's own registration)."""
    return SignedInUser.of(session_account(session, user))


@login_manager.user_loader
def load_user(session_id: str) -> SignedInUser | None:
    """The user a session (or remember cookie) names, or None (a signed-out
    visitor): a malformed value, a missing or deactivated user, or an epoch
    the user has since left (signed out, deactivated)."""
    key = session_key(session_id)
    if key is None:
        return None
    account = live_session_account(db(), *key)
    return SignedInUser.of(account) if account is not None else None


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if request.method == "POST":
        username = request.form.get("username", "")
        signed_in = None
        if not CONTROL_CHARACTERS.search(username):  # no username has them; a NUL breaks the query
            with reading() as session:
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
    and remember cookie of the user (programme.accounts.sign_out)."""
    sign_out(db(), current_user.actor.user_id)
    logout_user()
    g.pop("_login_user", None)
    return redirect(url_for("auth.login"))
