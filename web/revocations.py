"""Revocation and inspection after recognition (26/2026 Art. 8-9): the
province's OCOP coordination office and program manager open a revocation
on a competent body's conclusion, start an inspection of a certificate and
plan a year's inspections; the People's Committee (3-4 stars) or the
ministry (5 stars) records its numbered decision; everyone concerned sees
the open revocations and inspections of their area with their deadlines.

Reads go through programme.revocations; every change is one of its use
cases or programme.inspections'. A certificate or a decision task the user
may not act on answers 404, like one that does not exist.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import access
from engine.errors import ConcurrencyConflict, NotAllowed, OcopError
from programme import inspections, revocations
from programme.revocations import CASE_PROCESSES, REVOCATION_PROCESS
from storage.recognition_models import REVOCATION_GROUNDS
from web.context import actor, bpmn_engine, id_from, reading
from web.labels import CASE_PROCESS_LABELS, INSPECTION_KIND_LABELS, REVOCATION_GROUND_LABELS

revocations_pages = Blueprint("revocations", __name__, url_prefix="/revocations")

# Who finds these pages: those who open and plan, and those who decide.
PAGE_ROLES = ("province_office", "program_manager", "province_committee", "ministry")


def may_use_revocations() -> bool:
    return current_user.is_authenticated and current_user.has_role(*PAGE_ROLES)


@revocations_pages.app_context_processor
def _revocation_helpers():
    return {"may_use_revocations": may_use_revocations}


@revocations_pages.before_request
@login_required
def _concerned_only():
    if not may_use_revocations():
        abort(403)


def _labels() -> dict:
    return {"ground_labels": REVOCATION_GROUND_LABELS, "kind_labels": INSPECTION_KIND_LABELS,
            "process_labels": CASE_PROCESS_LABELS, "grounds": REVOCATION_GROUNDS}


def _message(err: Exception) -> str:
    """A use case's refusal ("Vietnamese / English") in the page's language."""
    text = str(err)
    if isinstance(err, ConcurrencyConflict):
        return _("Hồ sơ vừa thay đổi; vui lòng thử lại.")
    vietnamese, _sep, english = text.partition(" / ")
    return english if (english and get_locale().language == "en") else vietnamese


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.form.get(name, "").strip())
    except ValueError:
        return None


@revocations_pages.route("/")
def index():
    me = actor()
    with reading() as session:
        cases = revocations.open_cases(session, me)
        provinces = revocations.provinces_looked_after(session, me)
        province_id = id_from(request.args.get("province", "")) or (provinces[0][0] if provinces else None)
        certificates = (revocations.certificates_of_province(session, me, province_id)
                        if province_id in {pid for pid, _name in provinces} else [])
    today = revocations.local_today(bpmn_engine().clock())
    return render_template("revocations/index.html", cases=cases, provinces=provinces, province_id=province_id,
                           certificates=certificates, year=today.year, revocation_process=REVOCATION_PROCESS,
                           case_processes=CASE_PROCESSES, **_labels())


@revocations_pages.route("/certificates/<int:certificate_id>")
def certificate(certificate_id: int):
    with reading() as session:
        found = revocations.certificate_actions(session, actor(), certificate_id)
    if found is None:
        abort(404)
    today = revocations.local_today(bpmn_engine().clock())
    return render_template("revocations/certificate.html", found=found, form=request.form, today=today,
                           **_labels())


@revocations_pages.route("/certificates/<int:certificate_id>/revocation", methods=["POST"])
def open_revocation(certificate_id: int):
    me = actor()
    with reading() as session:
        found = revocations.certificate_actions(session, me, certificate_id)
    if found is None:
        abort(404)
    concluded_on = _date("concluded_on")
    try:
        if concluded_on is None:
            raise revocations.RevocationRefused(_("Ngày kết luận không hợp lệ."))
        revocations.open_revocation(bpmn_engine(), me, certificate_id, request.form.get("ground", ""),
                                    request.form.get("concluded_by", ""), concluded_on,
                                    request.form.get("summary", ""))
    except OcopError as err:
        flash(_message(err), "error")
        today = revocations.local_today(bpmn_engine().clock())
        return render_template("revocations/certificate.html", found=found, form=request.form, today=today,
                               **_labels()), 422
    flash(_("Đã mở thủ tục thu hồi; quyết định phải có trong 15 ngày kể từ ngày kết luận."), "success")
    return redirect(url_for("revocations.index"))


@revocations_pages.route("/certificates/<int:certificate_id>/inspection", methods=["POST"])
def start_inspection(certificate_id: int):
    me = actor()
    with reading() as session:
        found = revocations.certificate_actions(session, me, certificate_id)
    if found is None:
        abort(404)
    try:
        inspections.start_inspection(bpmn_engine(), me, certificate_id, request.form.get("reason", ""))
    except OcopError as err:
        flash(_message(err), "error")
        today = revocations.local_today(bpmn_engine().clock())
        return render_template("revocations/certificate.html", found=found, form=request.form, today=today,
                               **_labels()), 422
    flash(_("Đã bắt đầu kiểm tra đột xuất; việc kiểm tra nằm trong hộp việc của Văn phòng Điều phối."), "success")
    return redirect(url_for("revocations.index"))


@revocations_pages.route("/plan", methods=["POST"])
def plan():
    me = actor()
    province_id = id_from(request.form.get("province_id", ""))
    year = id_from(request.form.get("year", ""))
    percent = request.form.get("percent", "").strip().replace(",", ".")
    try:
        share = float(percent) / 100 if percent else None
    except ValueError:
        share = -1.0  # refused by the use case with its message
    if province_id is None or year is None or share is None:
        flash(_("Chọn tỉnh, năm và tỷ lệ kiểm tra."), "error")
        return redirect(url_for("revocations.index"))
    try:
        started = inspections.plan_inspections(bpmn_engine(), me, province_id, year, share=share)
    except NotAllowed:
        abort(403)
    except OcopError as err:
        flash(_message(err), "error")
    else:
        flash(_("Đã lập kế hoạch kiểm tra định kỳ năm %(year)s: %(count)s giấy chứng nhận.", year=year,
                count=len(started)), "success")
    return redirect(url_for("revocations.index", province=province_id))


@revocations_pages.route("/decisions/<task_id>", methods=["GET", "POST"])
def decide(task_id: str):
    me = actor()
    with reading() as session:
        case = revocations.decision_case(session, me, task_id)
    if case is None:
        abort(404)
    if request.method == "GET":
        return render_template("revocations/decide.html", case=case, form={}, **_labels())
    if case.waiting is None or not access.may_decide_revocation(me, case.certificate.stars, case.waiting):
        abort(403)  # seen (the office follows the case) but not the deciding authority's
    choice = request.form.get("revoke", "")
    if choice not in ("yes", "no"):
        flash(_("Chọn thu hồi hoặc không thu hồi."), "error")
        return render_template("revocations/decide.html", case=case, form=request.form, **_labels()), 422
    try:
        outcome = revocations.decide(bpmn_engine(), me, task_id, choice == "yes", request.form.get("number", ""),
                                     _date("signed_on"), request.form.get("signer", ""),
                                     request.form.get("reason", ""))
    except OcopError as err:
        flash(_message(err), "error")
        return render_template("revocations/decide.html", case=case, form=request.form, **_labels()), 422
    if outcome.end_event and outcome.end_event.startswith("end_revoked"):
        flash(_("Đã ghi quyết định thu hồi; chủ thể, xã và Văn phòng Điều phối được thông báo."), "success")
    else:
        flash(_("Đã ghi quyết định không thu hồi; giấy chứng nhận còn hiệu lực."), "success")
    return redirect(url_for("revocations.index"))
