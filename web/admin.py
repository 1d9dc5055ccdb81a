"""Administration: user accounts, their roles per area, activation, and API
tokens. Administrators only (role `admin`); everyone else gets 403.

Every change is a POST carrying the CSRF token (Flask-WTF checks it for the
whole app). Role levels are checked by programme.accounts.assign_role, the one
rule the CLI and the demo seed share; this module only words its refusals.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from background.mail import mailbox
from engine.forms import CONTROL_CHARACTERS
from engine.roles import ROLES
from programme.accounts import MIN_PASSWORD_LENGTH, assign_role, create_user
from storage.models import (
    JURISDICTION_LEVELS,
    ApiToken,
    Jurisdiction,
    Producer,
    RoleAssignment,
    User,
)
from web.api import issue_token
from web.auth import end_sessions
from web.context import actor, bpmn_engine, db, id_from, require_role
from web.extensions import login_manager

admin = Blueprint("admin", __name__, url_prefix="/admin")

# Producers are linked through the producer they own, not through a role.
ASSIGNABLE_ROLES = [role for key, role in ROLES.items() if key != "producer"]
LEVEL_LABELS = {"central": _l("Trung ương"), "province": _l("cấp tỉnh"),
                "district": _l("cấp huyện"), "commune": _l("cấp xã")}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
FULL_NAME_MAX = 200  # the column's length


class Refused(Exception):
    """A change the administrator asked for and we refuse; the message is shown."""


@admin.before_request
def _administrators_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # to the sign-in page, then back
    require_role("admin")


# --- pages -------------------------------------------------------------------------

@admin.get("/users")
def users():
    with db().transaction() as session:
        accounts = session.scalars(select(User).options(selectinload(User.roles))
                                   .order_by(User.username)).all()
        areas = _area_names(session)
        producers = _producers_by_owner(session)
    return render_template("admin/users.html", accounts=accounts, areas=areas, producers=producers,
                           roles=ROLES)


@admin.route("/users/new", methods=["GET", "POST"])
def new_user():
    form = request.form if request.method == "POST" else {}
    if request.method == "POST":
        try:
            user_id = _create_from_form(form)
        except Refused as err:
            flash(str(err), "error")
        else:
            flash(_("Đã tạo tài khoản %(username)s.", username=form.get("username", "").strip().lower()), "ok")
            return redirect(url_for("admin.user", user_id=user_id))
    with db().transaction() as session:
        choices = _area_choices(session)
    status = 422 if request.method == "POST" else 200
    return render_template("admin/user_new.html", form=form, roles=ASSIGNABLE_ROLES, choices=choices,
                           levels=LEVEL_LABELS, min_password=MIN_PASSWORD_LENGTH), status


@admin.get("/users/<int:user_id>")
def user(user_id: int, new_token: str | None = None, status: int = 200):
    with db().transaction() as session:
        account = _account(session, user_id)
        areas = _area_names(session)
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                 .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
        producers = _producers_by_owner(session).get(user_id, [])
        choices = _area_choices(session)
    return render_template("admin/user.html", account=account, areas=areas, tokens=tokens,
                           producers=producers, roles=ROLES, assignable=ASSIGNABLE_ROLES, choices=choices,
                           levels=LEVEL_LABELS, new_token=new_token), status


# --- changes -------------------------------------------------------------------------

@admin.post("/users/<int:user_id>/roles")
def add_role(user_id: int):
    try:
        with db().transaction() as session:
            account = _account(session, user_id)
            _assign(session, account, request.form.get("role", ""), request.form.get("jurisdiction_id", ""))
    except Refused as err:
        flash(str(err), "error")
        return user(user_id, status=422)
    flash(_("Đã gán vai trò."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/roles/<int:assignment_id>/remove")
def remove_role(user_id: int, assignment_id: int):
    try:
        with db().transaction() as session:
            assignment = session.get(RoleAssignment, assignment_id)
            if assignment is None or assignment.user_id != user_id:
                raise Refused(_("Không tìm thấy vai trò này."))
            # An administrator cannot take away their own administration:
            # that could leave nobody able to undo it.
            if assignment.role == "admin" and user_id == actor().user_id:
                raise Refused(_("Bạn không thể tự gỡ vai trò quản trị của mình."))
            session.delete(assignment)
    except Refused as err:
        flash(str(err), "error")
    else:
        flash(_("Đã gỡ vai trò."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/active")
def set_active(user_id: int):
    """Deactivate or reactivate. A deactivated user cannot sign in, their
    open sessions end at the next request (the login loader refuses them)
    and their API tokens stop working; nothing they did is removed. The
    sessions end for good: a later reactivation does not revive them (the
    deactivation moves the user's session epoch on)."""
    active = request.form.get("active") == "1"
    try:
        with db().transaction() as session:
            account = _account(session, user_id)
            if not active and user_id == actor().user_id:
                raise Refused(_("Bạn không thể tự khoá tài khoản của mình."))
            if account.is_active and not active:
                end_sessions(session, user_id)
            account.is_active = active
    except Refused as err:
        flash(str(err), "error")
    else:
        flash(_("Đã mở lại tài khoản.") if active else _("Đã khoá tài khoản."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/tokens")
def create_token(user_id: int):
    """A token for the account (e.g. a service account of an integration).
    The secret is rendered in this response only, never stored or flashed:
    the flash would carry it in the (signed, not encrypted) session cookie."""
    name = request.form.get("name", "").strip()
    if not 1 <= len(name) <= 100:
        flash(_("Cần đặt tên cho mã truy cập (tối đa 100 ký tự)."), "error")
        return user(user_id, status=422)
    if CONTROL_CHARACTERS.search(name):
        flash(_("Không được chứa ký tự điều khiển."), "error")
        return user(user_id, status=422)
    with db().transaction() as session:
        account = _account(session, user_id)
        if not account.is_active:
            flash(_("Tài khoản đang bị khoá."), "error")
            return redirect(url_for("admin.user", user_id=user_id))
        _row, secret = issue_token(session, user_id, name, bpmn_engine().clock())
    return user(user_id, new_token=secret)


@admin.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
def revoke_token(user_id: int, token_id: int):
    with db().transaction() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user_id:
            abort(404)
        if token.revoked_at is None:
            token.revoked_at = bpmn_engine().clock()
    flash(_("Đã thu hồi mã truy cập."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


# --- helpers -------------------------------------------------------------------------

def _create_from_form(form) -> int:
    """Create the account (and its first role, if one was chosen) in one
    transaction: a refused role leaves no half-made account behind."""
    username = form.get("username", "").strip().lower()
    full_name = form.get("full_name", "").strip()
    password = form.get("password", "")
    email = form.get("email", "").strip() or None
    role = form.get("role", "")
    if not USERNAME.match(username):
        raise Refused(_("Tên đăng nhập gồm 3–80 ký tự: chữ thường không dấu, số, dấu chấm, gạch ngang."))
    if not full_name:
        raise Refused(_("Cần nhập họ và tên."))
    if len(full_name) > FULL_NAME_MAX:
        raise Refused(_("Quá dài (tối đa 200 ký tự)."))
    if CONTROL_CHARACTERS.search(full_name):
        raise Refused(_("Không được chứa ký tự điều khiển."))
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Refused(_("Mật khẩu cần ít nhất %(count)d ký tự.", count=MIN_PASSWORD_LENGTH))
    if email is not None and (len(email) > 200 or mailbox(full_name, email) is None):
        raise Refused(_("Địa chỉ thư điện tử không hợp lệ."))
    with db().transaction() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Refused(_("Tên đăng nhập %(username)s đã có người dùng.", username=username))
        account = create_user(session, username, full_name, password, email=email)
        if role:
            _assign(session, account, role, form.get("jurisdiction_id", ""))
        return account.id


def _assign(session: Session, account: User, role: str, jurisdiction_id: str) -> None:
    if role not in ROLES or role == "producer":
        raise Refused(_("Vai trò không hợp lệ."))
    area_id = id_from(jurisdiction_id)
    if any(held.role == role and held.jurisdiction_id == area_id for held in account.roles):
        raise Refused(_("Người dùng đã có vai trò này tại địa bàn này."))
    try:
        assign_role(session, account, role, area_id)
    except ValueError:
        raise Refused(_("Vai trò “%(role)s” phải gán cho một địa bàn %(level)s.",
                        role=ROLES[role].label_vi, level=LEVEL_LABELS[ROLES[role].level])) from None


def _account(session: Session, user_id: int) -> User:
    account = session.get(User, user_id, options=[selectinload(User.roles)])
    if account is None:
        abort(404)
    return account


def _area_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Jurisdiction.id, Jurisdiction.name)).all())


def _area_choices(session: Session) -> list[tuple[str, list[Jurisdiction]]]:
    """Areas grouped by level, for the role form: the level of each role is
    shown beside it, and assign_role refuses an area of another level."""
    units = session.scalars(select(Jurisdiction).order_by(Jurisdiction.code)).all()
    return [(level, [unit for unit in units if unit.level == level]) for level in JURISDICTION_LEVELS]


def _producers_by_owner(session: Session) -> dict[int, list[str]]:
    owned: dict[int, list[str]] = {}
    for owner_id, name in session.execute(select(Producer.owner_user_id, Producer.name)
                                          .where(Producer.owner_user_id.is_not(None))):
        owned.setdefault(owner_id, []).append(name)
    return owned
