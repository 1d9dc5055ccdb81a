"""The OCOP report (/reports/, "Báo cáo OCOP"): the stock of valid
certificates, what was issued, revoked and expired per year and per round,
what expires in the next six months and, for the nation, each province --
on screen with the dashboard's SVG charts, and as CSV (UTF-8 with a byte
order mark, for Excel) and XLSX (one sheet per table).

Program managers and the People's Committee of a province read their
province; auditors, administrators and the ministry every province, with
a province filter. Who reads which province is
engine.access.report_scope_of (as programme.reports.ReportAudience),
checked on every request, downloads included; the figures are
programme/reports.py's, read inside `reading()`.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

import xlsxwriter
from flask import Blueprint, Response, abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from audit.export import spreadsheet_safe
from engine.errors import NotAllowed
from programme import reports as figures
from programme.reports import ReportAudience, ReportFilters
from programme.score_sheets import local_today
from storage.criteria import sets_by_code
from web import labels
from web.context import BadQueryValue, actor, bpmn_engine, query_int, reading
from web.dashboard import Bar
from web.extensions import login_manager
from web.formatting import local_date

reports = Blueprint("reports", __name__, url_prefix="/reports")

MOVEMENT_LABELS = {"new": _l("Công nhận mới"), "re_recognised": _l("Công nhận lại"),
                   "upgraded": _l("Nâng hạng"), "revoked": _l("Thu hồi"), "expired": _l("Hết hiệu lực")}
ROUND_LEVEL_LABELS = {"province": _l("Cấp tỉnh"), "central": _l("Cấp Trung ương")}
FIRST_YEAR, LAST_YEAR = 2000, 2100
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@reports.before_request
def _readers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # to the sign-in page, then back
    if not ReportAudience.of(actor()).may_view:
        abort(403)


def _filters() -> tuple[ReportAudience, ReportFilters]:
    """The date (default: today in Vietnam, by the engine's clock), the year
    of the rounds and of the by-province movements (default: the date's),
    and the province asked for. A province outside the user's scope is
    refused, never quietly replaced."""
    audience = ReportAudience.of(actor())
    on = _query_date("date") or local_today(bpmn_engine().clock())
    year = query_int("year", FIRST_YEAR, LAST_YEAR) or on.year
    try:
        return audience, audience.filters(on, year, query_int("province"))
    except NotAllowed:
        abort(403)


def _query_date(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        if not _DATE_TEXT.fullmatch(text):
            raise ValueError(text)
        value = date.fromisoformat(text)
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(text)
        return value
    except ValueError:
        raise BadQueryValue(f"Tham số “{name}” trong địa chỉ phải là một ngày dạng NNNN-TT-NN "
                            f"(năm {FIRST_YEAR} đến {LAST_YEAR}).",
                            f"The parameter “{name}” in the address must be a date as YYYY-MM-DD "
                            f"(years {FIRST_YEAR} to {LAST_YEAR}).") from None


def _read(filters: ReportFilters, limit: int | None = figures.EXPIRING_ON_SCREEN) -> figures.Report:
    with reading() as session:
        return _province_exists(figures.report(session, filters, limit))


def _province_exists(report: figures.Report) -> figures.Report:
    """A province filter naming no province (a commune's id, an unused id): 404."""
    if request.args.get("province") and not report.provinces:
        abort(404)
    return report


@reports.get("/")
def index():
    audience, filters = _filters()
    with reading() as session:
        report = _province_exists(figures.report(session, filters))
        provinces = figures.report_provinces(session, audience)
    selected = filters.provinces[0] if request.args.get("province") else None
    args = {"date": filters.on.isoformat(), "year": filters.year, "province": selected}
    return render_template(
        "reports/index.html", report=report, filters=filters, provinces=provinces, national=audience.national,
        selected_province=selected, download_args=args, tables={table.key: table for table in tables(report)},
        movement_labels=MOVEMENT_LABELS, star_bars=star_bars(report), industry_bars=industry_bars(report),
        kind_bars=kind_bars(report), year_bars=year_bars(report), month_bars=month_bars(report),
        province_bars=province_bars(report) if audience.national and not selected else [],
        round_label=round_label)


# --- the charts' bars ------------------------------------------------------------

def star_label(stars: int) -> str:
    return _("%(n)s sao", n=stars)


def star_bars(report: figures.Report) -> list[Bar]:
    return [Bar(star_label(stars), count, str(count)) for stars, count in report.stock.by_stars.items()]


def industry_bars(report: figures.Report) -> list[Bar]:
    # "Sản phẩm đồ uống" -> "Đồ uống": the chart's labels are short.
    names = {code: name[len("Sản phẩm "):].capitalize() if name.startswith("Sản phẩm ") else name
             for code, name in industry_names().items()}
    return [Bar(names.get(code, code), count, str(count)) for code, count in report.stock.by_industry.items()]


def kind_bars(report: figures.Report) -> list[Bar]:
    return [Bar(str(labels.KIND_LABELS.get(kind, kind)), count, str(count))
            for kind, count in report.stock.by_kind.items()]


def year_bars(report: figures.Report) -> list[Bar]:
    row = next((row for row in report.years if row.year == report.filters.year), None)
    counts = row.counts if row else figures.no_movements()
    return [Bar(str(MOVEMENT_LABELS[movement]), count, str(count),
                "not-recognised" if movement in ("revoked", "expired") else "")
            for movement, count in counts.items()]


def month_bars(report: figures.Report) -> list[Bar]:
    return [Bar(_("Tháng %(month)s/%(year)s", month=month, year=year), count, str(count))
            for year, month, count in report.expiring.by_month]


def province_bars(report: figures.Report) -> list[Bar]:
    return [Bar(row.name, row.total, str(row.total)) for row in report.provinces]


def round_label(row: figures.RoundRow) -> str:
    return _("Đợt %(n)s năm %(year)s", n=row.number, year=row.year)


def industry_names() -> dict[str, str]:
    english = get_locale().language != "vi"
    return {code: (name_en if english else name_vi.capitalize())
            for code, (name_vi, name_en) in figures.industry_names().items()}


def set_name(code: str) -> str:
    entry = sets_by_code().get(code, {})
    return entry.get("name_en" if get_locale().language != "vi" else "name_vi", code)


# --- the tables: on screen, as CSV and as XLSX ---------------------------------------

@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list]            # cells: str, int or date
    footer: list | None = None  # a total row


def tables(report: figures.Report) -> list[Table]:
    stock = report.stock
    movements = [str(label) for label in MOVEMENT_LABELS.values()]
    issued_and_revoked = movements[:4]
    on = local_date(report.filters.on)
    result = [
        Table("stars", _("Giấy chứng nhận còn hiệu lực ngày %(date)s theo hạng sao", date=on),
              [_("Hạng"), _("Số giấy chứng nhận")],
              [[star_label(stars), count] for stars, count in stock.by_stars.items()], [_("Tổng cộng"), stock.total]),
        Table("industries", _("Giấy chứng nhận còn hiệu lực theo ngành sản phẩm"),
              [_("Ngành"), _("Tên ngành"), _("Số giấy chứng nhận")],
              [[code, industry_names().get(code, code), count] for code, count in stock.by_industry.items()],
              [_("Tổng cộng"), "", stock.total]),
        Table("sets", _("Giấy chứng nhận còn hiệu lực theo bộ tiêu chí (nhóm sản phẩm)"),
              [_("Bộ tiêu chí"), _("Nhóm sản phẩm"), _("Ngành"), _("Số giấy chứng nhận")],
              [[code, set_name(code), figures.set_industries().get(code, ""), count]
               for code, count in stock.by_set.items()], [_("Tổng cộng"), "", "", stock.total]),
        Table("kinds", _("Giấy chứng nhận còn hiệu lực theo loại hình chủ thể"),
              [_("Loại hình chủ thể"), _("Số giấy chứng nhận")],
              [[str(labels.KIND_LABELS.get(kind, kind)), count] for kind, count in stock.by_kind.items()],
              [_("Tổng cộng"), stock.total]),
        Table("years", _("Biến động theo năm (đến ngày %(date)s)", date=on), [_("Năm"), *movements],
              [[row.year, *row.counts.values()] for row in report.years]),
        Table("rounds", _("Biến động theo đợt đánh giá năm %(year)s", year=report.filters.year),
              [_("Đợt"), _("Cấp"), _("Tỉnh"), *issued_and_revoked],
              [[round_label(row), str(ROUND_LEVEL_LABELS.get(row.level, row.level)), row.province or "",
                *list(row.counts.values())[:4]] for row in report.rounds]
              + ([[_("Không thuộc đợt nào"), "", "", *list(report.rounds_unassigned.values())[:4]]]
                 if any(report.rounds_unassigned.values()) else [])),
        Table("expiring_months", _("Giấy chứng nhận hết hiệu lực trong 6 tháng tới, theo tháng"),
              [_("Tháng"), _("Số giấy chứng nhận")],
              [[f"{month:02d}/{year}", count] for year, month, count in report.expiring.by_month],
              [_("Tổng cộng"), report.expiring.total]),
        Table("expiring", _("Danh sách giấy chứng nhận hết hiệu lực đến ngày %(date)s",
                            date=local_date(report.expiring.until)),
              [_("Số giấy chứng nhận"), _("Sản phẩm"), _("Chủ thể"), _("Xã"), _("Hạng sao"), _("Hiệu lực đến")],
              [[row.number, row.product, row.producer, row.commune, row.stars, row.valid_until]
               for row in report.expiring.certificates]),
    ]
    if len(report.provinces) > 1 or report.filters.provinces is None:
        result.append(Table(
            "provinces", _("Theo tỉnh: giấy chứng nhận còn hiệu lực và biến động năm %(year)s",
                           year=report.filters.year),
            [_("Mã tỉnh"), _("Tỉnh"), star_label(3), star_label(4), star_label(5), _("Tổng số còn hiệu lực"),
             *movements],
            [[row.code, row.name, *row.stock.values(), row.total, *row.movements.values()]
             for row in report.provinces]))
    return result


def _filename(report: figures.Report, extension: str) -> str:
    provinces = report.filters.provinces
    scope = "toan-quoc" if provinces is None else "-".join(
        row.code.lower() for row in report.provinces) or "khong-co-tinh"
    return f"bao-cao-ocop-{scope}-{report.filters.on.isoformat()}.{extension}"


def _attachment(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _text(cell) -> str:
    if isinstance(cell, date):
        return local_date(cell)
    return spreadsheet_safe(cell) if isinstance(cell, str) else str(cell)


@reports.get("/bao-cao.csv")
def report_csv():
    """Every table, one after the other: its title, its header, its rows."""
    _audience, filters = _filters()
    report = _read(filters, limit=None)
    out = io.StringIO()
    out.write("\ufeff")  # so Excel reads the Vietnamese right
    writer = csv.writer(out)
    for number, table in enumerate(tables(report)):
        if number:
            writer.writerow([])
        writer.writerow([_text(table.title)])
        writer.writerow([str(cell) for cell in table.header])
        writer.writerows([[_text(cell) for cell in row] for row in table.rows])
        if table.footer:
            writer.writerow([_text(cell) for cell in table.footer])
    return _attachment(out.getvalue().encode("utf-8"), "text/csv", _filename(report, "csv"))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Sheet names: at most 31 characters, no brackets, colons, asterisks, question marks or slashes (Excel).
SHEET_NAMES = {"stars": _l("Hạng sao"), "industries": _l("Ngành sản phẩm"), "sets": _l("Bộ tiêu chí"),
               "kinds": _l("Loại hình chủ thể"), "years": _l("Theo năm"), "rounds": _l("Theo đợt"),
               "expiring_months": _l("Sắp hết hiệu lực, theo tháng"), "expiring": _l("Sắp hết hiệu lực"),
               "provinces": _l("Theo tỉnh")}


@reports.get("/bao-cao.xlsx")
def report_xlsx():
    """One sheet per table: its header in bold, columns as wide as their text."""
    _audience, filters = _filters()
    report = _read(filters, limit=None)
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    bold = workbook.add_format({"bold": True})
    day = workbook.add_format({"num_format": "dd/mm/yyyy"})
    for table in tables(report):
        sheet = workbook.add_worksheet(str(SHEET_NAMES[table.key])[:31])
        rows = [table.header, *table.rows, *([table.footer] if table.footer else [])]
        for column, cell in enumerate(table.header):
            sheet.write_string(0, column, str(cell), bold)
        for row_number, row in enumerate(rows[1:], start=1):
            for column, cell in enumerate(row):
                if isinstance(cell, date):
                    sheet.write_datetime(row_number, column, cell, day)
                elif isinstance(cell, (int, float)):
                    sheet.write_number(row_number, column, cell, bold if row is table.footer else None)
                else:
                    sheet.write_string(row_number, column, str(cell), bold if row is table.footer else None)
        sheet.freeze_panes(1, 0)  # the header stays in view
        for column in range(len(table.header)):
            width = max(len(_text(row[column])) for row in rows if column < len(row))
            sheet.set_column(column, column, min(max(width + 2, 8), 60))
    workbook.close()
    return _attachment(out.getvalue(), XLSX_TYPE, _filename(report, "xlsx"))
