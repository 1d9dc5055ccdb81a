"""The programme dashboard (/dashboard/): the funnel of a cycle year by
province and district, star distribution, return rates, time spent in
each step, overdue tasks per area -- charts drawn as SVG on the server,
each with its numbers as a table and as a CSV download.

Program managers see the provinces where they hold the role; auditors and
administrators see every province. The figures come from the queries of
programme/dashboard.py, read inside `reading()`; who sees which province
is engine.access.oversight_of (as programme.dashboard.Audience), checked
on every request, CSV downloads included.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from audit.export import spreadsheet_safe
from engine.errors import NotAllowed
from programme import dashboard as figures
from programme.dashboard import Audience, Filters
from web import labels
from web.context import actor, bpmn_engine, query_int, reading
from web.extensions import login_manager

dashboard = Blueprint("dashboard", __name__, url_prefix="/dashboard")

FUNNEL_LABELS = {
    "registered": _l("Ý tưởng đã đăng ký"),
    "idea_accepted": _l("Ý tưởng được chấp nhận"),
    "plan_accepted": _l("Phương án được chấp nhận"),
    "dossier_submitted": _l("Hồ sơ sản phẩm đã nộp"),
    "ranked": _l("Đã đánh giá, xếp hạng"),
    "promoted": _l("Đưa vào xúc tiến thương mại"),
}
SUBJECT_LABELS = {"idea": _l("Ý tưởng sản phẩm"), "plan": _l("Phương án sản xuất kinh doanh"),
                  "dossier": _l("Hồ sơ sản phẩm")}
LEVEL_LABELS = {"commune": _l("Xã"), "district": _l("Huyện"), "province": _l("Tỉnh"),
                "central": _l("Trung ương")}
NO_DISTRICT = _l("Xã trực thuộc tỉnh (không có cấp huyện)")
FIRST_YEAR, LAST_YEAR = 2000, 2100


def star_label(bucket: str) -> str:
    return _("Không được công nhận") if bucket == "not_recognised" else _("%(n)s sao", n=bucket)


@dataclass
class Bar:
    """One bar of a chart: its label, length (value) and the value as shown."""

    label: str
    value: float
    text: str
    css: str = ""


@dashboard.before_request
def _managers_and_auditors_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # to the sign-in page, then back
    if not Audience.of(actor()).may_view:
        abort(403)


def _filters() -> tuple[Audience, Filters]:
    """The year (default: the engine clock's) and province asked for. A
    province outside the user's scope is refused, never quietly replaced."""
    audience = Audience.of(actor())
    year = query_int("year", FIRST_YEAR, LAST_YEAR) or bpmn_engine().clock().year
    try:
        return audience, audience.filters(year, query_int("province"))
    except NotAllowed:
        abort(403)


@dashboard.get("/")
def index():
    audience, filters = _filters()
    now = bpmn_engine().clock()
    with reading() as session:
        result = figures.dashboard(session, filters, now)
        provinces = figures.provinces(session, audience)
        years = figures.cycle_years(session, audience, now.year)
    selected = filters.provinces[0] if filters.provinces and request.args.get("province") else None
    return render_template(
        "dashboard/index.html", result=result, filters=filters, provinces=provinces, years=years,
        selected_province=selected, national=audience.national,
        csv_args={"year": filters.year, "province": selected}, format_percent=format_percent,
        funnel_labels=FUNNEL_LABELS, subject_labels=SUBJECT_LABELS, level_labels=LEVEL_LABELS,
        step_labels=labels.STEP_LABELS, no_district=NO_DISTRICT, star_label=star_label,
        funnel_bars=funnel_bars(result.funnel), star_bars=star_bars(result.stars),
        return_bars=return_bars(result.returns), step_bars=step_bars(result.step_times),
        overdue_bars=overdue_bars(result.overdue))


# --- the charts' bars ------------------------------------------------------------

def funnel_bars(funnel: figures.Funnel) -> list[Bar]:
    registered = funnel.total["registered"]
    bars = []
    for stage, label in FUNNEL_LABELS.items():
        count = funnel.total[stage]
        share = f" ({format_percent(count / registered, '#,##0%')})" if registered and stage != "registered" else ""
        bars.append(Bar(str(label), count, f"{count}{share}"))
    return bars


def star_bars(stars: dict[str, int]) -> list[Bar]:
    return [Bar(star_label(bucket), count, str(count), "not-recognised" if bucket == "not_recognised" else "")
            for bucket, count in stars.items()]


def return_bars(returns: list[figures.ReturnRate]) -> list[Bar]:
    return [Bar(str(SUBJECT_LABELS[rate.subject]), (rate.rate or 0) * 100,
                f"{percent(rate.rate)} ({rate.returned}/{rate.reviews})" if rate.reviews else _("chưa có"))
            for rate in returns]


def step_bars(times: list[figures.StepTime]) -> list[Bar]:
    bars = []
    for time in times:
        bars.append(Bar(_("Bước %(n)s: trung vị", n=time.step), time.median_days, days(time.median_days), "median"))
        bars.append(Bar(_("Bước %(n)s: phân vị 90", n=time.step), time.p90_days, days(time.p90_days), "p90"))
    return bars


def overdue_bars(overdue: list[figures.OverdueArea]) -> list[Bar]:
    return [Bar(row.name or _("Không rõ địa bàn"), row.tasks, str(row.tasks)) for row in overdue]


def percent(rate: float | None) -> str:
    return format_percent(rate, "#,##0.0%") if rate is not None else ""


def days(value: float | None) -> str:
    return _("%(days)s ngày", days=format_decimal(round(value, 1), "#,##0.0")) if value is not None else ""


# --- the numbers behind each chart, as CSV -------------------------------------------

@dashboard.get("/funnel.csv")
def funnel_csv():
    _audience, filters = _filters()
    with reading() as session:
        funnel = figures.funnel(session, filters)
    rows = []
    for province in funnel.provinces:
        rows.append([province.province, _("Cả tỉnh"), *province.counts.values()])
        for district in funnel.districts:
            if district.province_id == province.province_id:
                rows.append([district.province, district.district or str(NO_DISTRICT), *district.counts.values()])
    rows.append([_("Tổng cộng"), "", *funnel.total.values()])
    return _csv("funnel", filters, [_("Tỉnh"), _("Huyện"), *map(str, FUNNEL_LABELS.values())], rows)


@dashboard.get("/stars.csv")
def stars_csv():
    _audience, filters = _filters()
    with reading() as session:
        stars = figures.star_distribution(session, filters)
    return _csv("stars", filters, [_("Hạng"), _("Số sản phẩm")],
                [[star_label(bucket), count] for bucket, count in stars.items()])


@dashboard.get("/returns.csv")
def returns_csv():
    _audience, filters = _filters()
    with reading() as session:
        returns = figures.return_rates(session, filters)
    return _csv("returns", filters,
                [_("Hồ sơ được đánh giá"), _("Bước"), _("Số lượt đánh giá"), _("Số lượt trả lại"),
                 _("Tỷ lệ trả lại (%)")],
                [[SUBJECT_LABELS[rate.subject], rate.step, rate.reviews, rate.returned,
                  "" if rate.rate is None else f"{rate.rate * 100:.1f}"] for rate in returns])


@dashboard.get("/step-times.csv")
def step_times_csv():
    _audience, filters = _filters()
    with reading() as session:
        times = figures.step_times(session, filters)
    return _csv("step-times", filters,
                [_("Bước"), _("Tên bước"), _("Số sản phẩm"), _("Trung vị (ngày)"), _("Phân vị 90 (ngày)")],
                [[time.step, labels.STEP_LABELS.get(time.step, ""), time.instances, f"{time.median_days:.2f}",
                  f"{time.p90_days:.2f}"] for time in times])


@dashboard.get("/overdue.csv")
def overdue_csv():
    _audience, filters = _filters()
    with reading() as session:
        overdue = figures.overdue_tasks(session, filters, bpmn_engine().clock())
    return _csv("overdue", filters, [_("Địa bàn"), _("Cấp"), _("Số việc quá hạn")],
                [[row.name, LEVEL_LABELS.get(row.level, row.level or ""), row.tasks] for row in overdue])


def _csv(name: str, filters: Filters, header: list, rows: list[list]) -> Response:
    """UTF-8 with a byte order mark, so Excel reads the Vietnamese right."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([str(cell) for cell in header])
    writer.writerows([[spreadsheet_safe(str(cell)) if isinstance(cell, str) else str(cell) for cell in row]
                      for row in rows])
    scope = f"-p{filters.provinces[0]}" if filters.provinces and request.args.get("province") else ""
    filename = f"ocop-{name}-{filters.year}{scope}.csv"
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
