"""Administration: user accounts, their roles per area, activation, and API
tokens. Administrators only (role `admin`); everyone else gets 403.

Every change is a POST carrying the CSRF token (Flask-WTF checks it for the
whole app) and goes through a use case of programme.accounts or
programme.tokens, which also holds the rules (role levels, an
administrator's own account); this module checks the form's values and
words the refusals.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from background.mail import mailbox
from engine.forms import CONTROL_CHARACTERS
from engine.roles import ROLES
from programme import accounts, tokens
from programme.accounts import FULL_NAME_MAX, MIN_PASSWORD_LENGTH, USERNAME
from web import labels
from web.context import actor, bpmn_engine, db, id_from, reading, require_role
from web.extensions import login_manager

admin = Blueprint("admin", __name__, url_prefix="/admin")

ASSIGNABLE_ROLES = [ROLES[key] for key in accounts.ASSIGNABLE_ROLES]


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
    with reading() as session:
        listed = accounts.accounts_with_roles(session)
        areas = accounts.area_names(session)
        producers = accounts.producers_by_owner(session)
    return render_template("admin/users.html", accounts=listed, areas=areas, producers=producers,
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
    with reading() as session:
        choices = accounts.areas_by_level(session)
    status = 422 if request.method == "POST" else 200
    return render_template("admin/user_new.html", form=form, roles=ASSIGNABLE_ROLES, choices=choices,
                           levels=labels.LEVEL_LABELS, min_password=MIN_PASSWORD_LENGTH), status


@admin.get("/users/<int:user_id>")
def user(user_id: int, new_token: str | None = None, status: int = 200):
    with reading() as session:
        account = accounts.account_with_roles(session, user_id)
        if account is None:
            abort(404)
        areas = accounts.area_names(session)
        listed = tokens.tokens_of(session, user_id)
        producers = accounts.producers_by_owner(session).get(user_id, [])
        choices = accounts.areas_by_level(session)
    return render_template("admin/user.html", account=account, areas=areas, tokens=listed,
                           producers=producers, roles=ROLES, assignable=ASSIGNABLE_ROLES, choices=choices,
                           levels=labels.LEVEL_LABELS, new_token=new_token), status


# --- changes -------------------------------------------------------------------------

@admin.post("/users/<int:user_id>/roles")
def add_role(user_id: int):
    try:
        accounts.give_role(db(), user_id, request.form.get("role", ""),
                           id_from(request.form.get("jurisdiction_id", "")))
    except accounts.UnknownAccount:
        abort(404)
    except accounts.AccountRefused as refused:
        flash(_refusal(refused), "error")
        return user(user_id, status=422)
    flash(_("Đã gán vai trò."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/roles/<int:assignment_id>/remove")
def remove_role(user_id: int, assignment_id: int):
    try:
        accounts.remove_role(db(), user_id, assignment_id, actor())
    except accounts.AccountRefused as refused:
        flash(_refusal(refused), "error")
    else:
        flash(_("Đã gỡ vai trò."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/active")
def set_active(user_id: int):
    """Deactivate or reactivate. A deactivated user cannot sign in, their
    open sessions end at the next request and their API tokens stop
    working; a later reactivation does not revive the sessions
    (programme.accounts.deactivate)."""
    active = request.form.get("active") == "1"
    try:
        if active:
            accounts.reactivate(db(), user_id)
        else:
            accounts.deactivate(db(), user_id, actor())
    except accounts.UnknownAccount:
        abort(404)
    except accounts.AccountRefused as refused:
        flash(_refusal(refused), "error")
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
    try:
        issued = tokens.create_token(db(), user_id, name, bpmn_engine().clock())
    except accounts.UnknownAccount:
        abort(404)
    except accounts.AccountInactive:
        flash(_("Tài khoản đang bị khoá."), "error")
        return redirect(url_for("admin.user", user_id=user_id))
    return user(user_id, new_token=issued.secret)


@admin.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
def revoke_token(user_id: int, token_id: int):
    if tokens.revoke_token(db(), user_id, token_id, bpmn_engine().clock()) is None:
        abort(404)
    flash(_("Đã thu hồi mã truy cập."), "ok")
    return redirect(url_for("admin.user", user_id=user_id))


# --- helpers -------------------------------------------------------------------------

def _create_from_form(form) -> int:
    """Check the form's values, then create the account (and its first
    role, if one was chosen) in one transaction (programme.accounts.open_account)."""
    username = form.get("username", "").strip().lower()
    full_name = form.get("full_name", "").strip()
    password = form.get("password", "")
    email = form.get("email", "").strip() or None
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
    try:
        return accounts.open_account(db(), username, full_name, password, email=email,
                                     role=form.get("role", ""), area_id=id_from(form.get("jurisdiction_id", "")))
    except accounts.AccountRefused as refused:
        raise Refused(_refusal(refused)) from None


def _refusal(refused: accounts.AccountRefused) -> str:
    """A refusal of programme.accounts, in the administrator's words."""
    if isinstance(refused, accounts.UsernameTaken):
        return _("Tên đăng nhập %(username)s đã có người dùng.", username=str(refused))
    if isinstance(refused, accounts.RoleAlreadyHeld):
        return _("Người dùng đã có vai trò này tại địa bàn này.")
    if isinstance(refused, accounts.WrongAreaLevel):
        role = ROLES[refused.role]
        return _("Vai trò “%(role)s” phải gán cho một địa bàn %(level)s.",
                 role=role.label_vi, level=labels.LEVEL_LABELS[role.level])
    if isinstance(refused, accounts.UnknownRoleAssignment):
        return _("Không tìm thấy vai trò này.")
    if isinstance(refused, accounts.OwnAdministration):
        return _("Bạn không thể tự gỡ vai trò quản trị của mình.")
    if isinstance(refused, accounts.OwnDeactivation):
        return _("Bạn không thể tự khoá tài khoản của mình.")
    if isinstance(refused, accounts.InvalidRole):
        return _("Vai trò không hợp lệ.")
    raise refused  # a refusal the caller should have answered itself (a missing account: 404)
