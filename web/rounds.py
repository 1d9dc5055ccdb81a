"""The evaluation rounds' pages (Đợt đánh giá): a province's (or the
ministry's) rounds of a year with their status and counts; a round's page
(agenda, council sessions, decisions; its dates, an extra round, closing
it for who plans rounds); recording a numbered recognition decision for
the products waiting for it; a decision's own page.

Reads go through programme.rounds / programme.recognition; every change
is one of their use cases. A round or decision the user may not see
answers 404, like one that does not exist; a change they may not make, 403.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.access import AUTHORITY_ROLES, may_plan_rounds
from engine.errors import NotAllowed, OcopError
from programme import recognition, rounds
from web.context import actor, bpmn_engine, id_from, query_int, reading

rounds_pages = Blueprint("rounds", __name__, url_prefix="/rounds")

# Who finds the rounds in the menu (templates/base.html asks may_use_rounds).
ROUND_PAGE_ROLES = ("program_manager", "province_committee", "district_committee", "ministry", "province_office",
                    "province_council", "district_council", "central_council", "province_advisory", "auditor",
                    "admin")
AUTHORITY_OF_ROLE = {role: authority for authority, role in AUTHORITY_ROLES.items()}


def may_use_rounds() -> bool:
    return current_user.is_authenticated and current_user.has_role(*ROUND_PAGE_ROLES)


@rounds_pages.app_context_processor
def _round_helpers():
    return {"may_use_rounds": may_use_rounds}


@rounds_pages.before_request
@login_required
def _officers_only():
    if not may_use_rounds():
        abort(403)


def _refused(err: Exception):
    if isinstance(err, (rounds.UnknownRound, recognition.UnknownDecision)):
        abort(404)
    if isinstance(err, NotAllowed):
        abort(403, description=str(err))
    flash(str(err), "error")


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.form.get(name, "").strip())
    except ValueError:
        return None


def _year() -> int:
    return query_int("year", 2000, 2100) or bpmn_engine().clock().year


def _authorities() -> list[tuple[str, int]]:
    """The (authority, area) pairs whose decisions the user records."""
    me = actor()
    return sorted((AUTHORITY_OF_ROLE[role], area) for role, area in me.roles
                  if role in AUTHORITY_OF_ROLE and area is not None)


@rounds_pages.get("/")
def index():
    me, year = actor(), _year()
    with reading() as session:
        areas = rounds.round_areas(session, me)
        wanted = id_from(request.args.get("province", ""))
        level = "central" if request.args.get("level") == "central" else "province"
        chosen = next((a for a in areas if a.level == level and (level == "central" or a.province_id == wanted)),
                      areas[0] if areas else None)
        lines = rounds.rounds_of(session, me, chosen.level, chosen.province_id, year) if chosen else []
        defaults = rounds.default_calendar_of(chosen.level, year) if chosen else []
    may_plan = chosen is not None and may_plan_rounds(me, chosen.level, chosen.province_id)
    return render_template("rounds/index.html", areas=areas, chosen=chosen, year=year, lines=lines,
                           defaults=defaults, may_plan=may_plan, authorities=_authorities())


def _back_to(level: str, province_id: int | None, year: int):
    return redirect(url_for("rounds.index", level=level, province=province_id or "", year=year))


def _area_from_form() -> tuple[str, int | None]:
    level = "central" if request.form.get("level") == "central" else "province"
    return level, (None if level == "central" else id_from(request.form.get("province_id", "")))


@rounds_pages.post("/plan")
def plan():
    level, province_id = _area_from_form()
    year = id_from(request.form.get("year", "")) or 0
    try:
        created = rounds.plan_year(bpmn_engine(), actor(), level, province_id, year)
        flash(_("Đã lập %(count)s đợt đánh giá năm %(year)s.", count=created, year=year), "success")
    except OcopError as err:
        _refused(err)
    return _back_to(level, province_id, year)


@rounds_pages.post("/extra")
def extra():
    level, province_id = _area_from_form()
    year = id_from(request.form.get("year", "")) or 0
    try:
        round_id = rounds.add_extra_round(bpmn_engine(), actor(), level, province_id, year, _date("proposals_by"),
                                          _date("decide_by"), request.form.get("note", ""))
        flash(_("Đã thêm đợt đánh giá bổ sung."), "success")
        return redirect(url_for("rounds.round_view", round_id=round_id))
    except OcopError as err:
        _refused(err)
    return _back_to(level, province_id, year)


@rounds_pages.get("/<int:round_id>")
def round_view(round_id: int):
    me = actor()
    with reading() as session:
        try:
            page = rounds.round_page(session, me, round_id)
        except OcopError as err:
            return _refused(err)
    return render_template("rounds/round.html", page=page, authorities=_authorities())


@rounds_pages.post("/<int:round_id>/dates")
def dates(round_id: int):
    try:
        rounds.change_dates(bpmn_engine(), actor(), round_id, _date("proposals_by"), _date("decide_by"),
                            request.form.get("note", ""))
        flash(_("Đã đổi ngày của đợt đánh giá."), "success")
    except OcopError as err:
        _refused(err)
    return redirect(url_for("rounds.round_view", round_id=round_id))


@rounds_pages.post("/<int:round_id>/close")
def close(round_id: int):
    try:
        rounds.close_round(bpmn_engine(), actor(), round_id)
        flash(_("Đã kết thúc đợt đánh giá."), "success")
    except OcopError as err:
        _refused(err)
    return redirect(url_for("rounds.round_view", round_id=round_id))


def _authority_args() -> tuple[str, int]:
    authority = request.values.get("authority", "")
    area = id_from(request.values.get("area", ""))
    if authority not in AUTHORITY_ROLES or area is None:
        abort(404)
    return authority, area


@rounds_pages.route("/decisions/new", methods=["GET", "POST"])
def new_decision():
    me = actor()
    authority, area = _authority_args()
    round_id = id_from(request.values.get("round", ""))
    if request.method == "POST":
        chosen = [i for i in (id_from(v) for v in request.form.getlist("instance_id")) if i is not None]
        try:
            decision_id = recognition.issue_decision(
                bpmn_engine(), me, area, authority, request.form.get("number", ""), _date("signed_on"),
                request.form.get("signer", ""), chosen, round_id)
            flash(_("Đã ghi quyết định."), "success")
            return redirect(url_for("rounds.decision", decision_id=decision_id))
        except OcopError as err:
            _refused(err)
    with reading() as session:
        try:
            waiting = recognition.waiting_for_decision(session, me, authority, area, round_id)
            issued = recognition.decisions_of(session, me, authority, area, limit=20)
        except OcopError as err:
            return _refused(err)
    return render_template("rounds/decision_new.html", authority=authority, area=area, round_id=round_id,
                           waiting=waiting, issued=issued, today=bpmn_engine().clock().date(),
                           may_issue=(authority, area) in _authorities(), form=request.form)


@rounds_pages.get("/decisions/<int:decision_id>")
def decision(decision_id: int):
    with reading() as session:
        try:
            page = recognition.decision_page(session, actor(), decision_id)
        except OcopError as err:
            return _refused(err)
    return render_template("rounds/decision.html", page=page)
