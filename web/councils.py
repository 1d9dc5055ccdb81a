"""The evaluation councils' pages: the councils a user sits on or keeps
(with the products waiting for a session and the recent sessions), a
council's roster and rules (kept by the province's program manager or an
administrator, every change in the admin log), opening a session with its
attendance and agenda, and the printable minutes (biên bản) with the
chair's confirmation.

Reads go through programme.councils / programme.council_minutes; every
change is one of their use cases. A council the user may not see answers
404, like one that does not exist; a change they may not make, 403.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import ConcurrencyConflict, NotAllowed, OcopError
from programme import councils as council_use
from programme.council_minutes import session_minutes
from programme.councils import UnknownCouncil
from storage.council_models import COUNCIL_ROLES
from web.context import actor, bpmn_engine, id_from, reading
from web.labels import COUNCIL_ACTION_LABELS, COUNCIL_LEVEL_LABELS, COUNCIL_ROLE_LABELS

councils = Blueprint("councils", __name__, url_prefix="/councils")

# Who finds the councils' pages in the menu (templates/base.html asks may_use_councils).
COUNCIL_PAGE_ROLES = ("district_council", "province_council", "central_council", "program_manager", "auditor",
                      "admin")


def may_use_councils() -> bool:
    return current_user.is_authenticated and current_user.has_role(*COUNCIL_PAGE_ROLES)


@councils.app_context_processor
def _council_helpers():
    return {"may_use_councils": may_use_councils}


@councils.before_request
@login_required
def _members_and_keepers_only():
    if not may_use_councils():
        abort(403)


def _labels() -> dict:
    return {"role_labels": COUNCIL_ROLE_LABELS, "level_labels": COUNCIL_LEVEL_LABELS,
            "action_labels": COUNCIL_ACTION_LABELS, "council_roles": COUNCIL_ROLES}


def _refused(err: Exception):
    """A use case's refusal as the page's answer: 404 for what the user may
    not see, 403 for what they may not do, else the message, flashed."""
    if isinstance(err, UnknownCouncil):
        abort(404)
    if isinstance(err, NotAllowed):
        abort(403, description=str(err))
    if isinstance(err, ConcurrencyConflict):
        flash(_("Hồ sơ vừa thay đổi; vui lòng thử lại."), "error")
    else:
        flash(str(err), "error")


def _number(name: str, default: float) -> float | str:
    """A decimal the form typed, with a comma or a point; the text itself when it is not one
    (the use case then refuses it with its message)."""
    text = request.form.get(name, "").strip().replace(",", ".")
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        return text


# --- the councils -------------------------------------------------------------------------

@councils.get("/")
def index():
    with reading() as session:
        entries = council_use.councils_for(session, actor())
        # The products themselves for the councils one sits on (their number for the others).
        waiting = {entry.council.id: council_use.waiting_products(session, actor(), entry.council.id)
                   for entry in entries if entry.my_role and entry.waiting}
        sessions = council_use.sessions_for(session, actor(), limit=20)
        creatable = council_use.council_areas_to_keep(session, actor())
    return render_template("councils/index.html", entries=entries, waiting=waiting, sessions=sessions,
                           creatable=creatable, **_labels())


@councils.post("/")
def create():
    area_id = id_from(request.form.get("area_id", ""))
    if area_id is None:
        abort(400)
    try:
        council_id = council_use.create_council(
            bpmn_engine(), actor(), None, area_id, request.form.get("name", ""),
            _number("quorum_fraction", 0.75), request.form.get("chair_required") == "1",
            _number("spread_limit", 10.0))
    except OcopError as err:
        _refused(err)
        return redirect(url_for("councils.index"))
    flash(_("Đã lập hội đồng."), "success")
    return redirect(url_for("councils.council", council_id=council_id))


def _readable_or_404(session, me, council_id: int):
    """The council, or 404 for one that does not exist or the user may not see."""
    found = council_use.readable_council(session, me, council_id)
    if found is None:
        abort(404)
    return found


@councils.get("/<int:council_id>")
def council(council_id: int):
    me = actor()
    with reading() as session:
        found = _readable_or_404(session, me, council_id)
        members = council_use.active_members(session, council_id)
        former = council_use.former_members(session, council_id)
        keeps = council_use.may_keep(session, me, found)
        log = council_use.council_log(session, council_id, limit=50) if keeps or current_user.has_role("auditor") \
            else []
        sessions = council_use.sessions_for(session, me, council_id=council_id)
        waiting = council_use.waiting_products(session, me, council_id) if found.active else []
        area = found.area.name
    opens = keeps or any(m.user_id == me.user_id and m.council_role in ("chair", "secretary") for m in members)
    return render_template("councils/council.html", council=found, area=area, members=members, former=former,
                           keeps=keeps, opens=opens and found.active, log=log, sessions=sessions,
                           waiting=waiting, **_labels())


def _back(council_id: int):
    return redirect(url_for("councils.council", council_id=council_id))


def _keep(council_id: int, change, done: str):
    """One change to a council's roster or rules: the use case refuses with
    its own words (flashed), or the change is confirmed; back to the council."""
    try:
        change()
    except OcopError as err:
        _refused(err)
    else:
        flash(done, "success")
    return _back(council_id)


@councils.post("/<int:council_id>/settings")
def settings(council_id: int):
    return _keep(council_id, lambda: council_use.change_settings(
        bpmn_engine(), actor(), council_id, request.form.get("name", ""), _number("quorum_fraction", 0.75),
        request.form.get("chair_required") == "1", _number("spread_limit", 10.0)),
        _("Đã lưu quy chế hội đồng."))


@councils.post("/<int:council_id>/members")
def add_member(council_id: int):
    username = request.form.get("username", "")
    with reading() as session:
        account = council_use.account_by_username(session, username) if username.strip() else None
    if account is None:
        flash(_("Không có tài khoản “%(username)s”.", username=username.strip()), "error")
        return _back(council_id)
    return _keep(council_id, lambda: council_use.add_member(
        bpmn_engine(), actor(), council_id, account.id, request.form.get("department", ""),
        request.form.get("council_role", "")), _("Đã thêm %(name)s vào hội đồng.", name=account.full_name))


@councils.post("/<int:council_id>/members/<int:member_id>/role")
def change_role(council_id: int, member_id: int):
    return _keep(council_id, lambda: council_use.change_role(
        bpmn_engine(), actor(), member_id, request.form.get("council_role", ""), council_id),
        _("Đã đổi vai trò."))


@councils.post("/<int:council_id>/members/<int:member_id>/remove")
def remove_member(council_id: int, member_id: int):
    return _keep(council_id, lambda: council_use.remove_member(bpmn_engine(), actor(), member_id, council_id),
                 _("Thành viên đã rời hội đồng (vẫn giữ trong lịch sử)."))


# --- sessions -------------------------------------------------------------------------------

def _session_form(council_id: int, status: int = 200, form: dict | None = None):
    me = actor()
    with reading() as session:
        found = _readable_or_404(session, me, council_id)
        members = council_use.active_members(session, council_id)
        waiting = council_use.waiting_products(session, me, council_id)
        area = found.area.name
    return render_template("councils/session_new.html", council=found, area=area, members=members,
                           waiting=waiting, form=form or {}, today=bpmn_engine().clock().date(),
                           **_labels()), status


@councils.get("/<int:council_id>/sessions/new")
def new_session(council_id: int):
    return _session_form(council_id)


@councils.post("/<int:council_id>/sessions")
def open_session(council_id: int):
    present = [value for value in (id_from(text) for text in request.form.getlist("present")) if value]
    task_ids = [text.strip()[:36] for text in request.form.getlist("task_id") if text.strip()]
    form = {"present": present, "task_ids": task_ids, "place": request.form.get("place", ""),
            "held_on": request.form.get("held_on", "")}
    try:
        held_on = date.fromisoformat(form["held_on"])
    except ValueError:
        flash(_("Ngày họp không hợp lệ."), "error")
        return _session_form(council_id, 400, form)
    try:
        session_id = council_use.open_session(bpmn_engine(), actor(), council_id, task_ids, present, held_on,
                                              form["place"])
    except OcopError as err:
        _refused(err)
        return _session_form(council_id, 409 if isinstance(err, ConcurrencyConflict) else 400, form)
    flash(_("Đã mở phiên họp; các thành viên có mặt chấm điểm từng sản phẩm trong hộp việc của mình."), "success")
    return redirect(url_for("councils.minutes", session_id=session_id))


@councils.get("/sessions/<int:session_id>")
def minutes(session_id: int):
    with reading() as session:
        if council_use.readable_session(session, actor(), session_id) is None:
            abort(404)
        record = session_minutes(session, session_id)
        pending = len(council_use.sign_off_tasks(session, session_id))
    return render_template("councils/minutes.html", minutes=record, pending_sign_off=pending,
                           is_chair=record.chair_id == actor().user_id, **_labels())


@councils.post("/sessions/<int:session_id>/sign-off")
def sign_off(session_id: int):
    try:
        done = council_use.sign_off_session(bpmn_engine(), actor(), session_id, request.form.get("notes", ""))
    except OcopError as err:
        _refused(err)
    else:
        flash(_("Đã xác nhận biên bản cho %(count)s sản phẩm.", count=done), "success")
    return redirect(url_for("councils.minutes", session_id=session_id))
