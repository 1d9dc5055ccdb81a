"""Auditor pages: search instances, read one instance's history beside its
diagram, export histories with their hash chains.

Auditors and administrators see every instance, a program manager those of
their provinces (engine.access.oversight_of); everyone else gets 403. An
instance outside the reader's scope is answered 404 on every route, exports
and frames included, so its existence does not leak. Pages read through
the queries of audit/ (search, timeline, checkpoints) inside `reading()`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape

from audit import checkpoints, export, timeline, verification
from audit import search as audit_search
from audit.search import AuditFilter
from engine.access import oversight_of
from web import labels, task_forms
from web.checkpoints import public_key_or_none
from web.context import MAX_PAGE, actor, bpmn_engine, db, query_int, reading
from web.extensions import login_manager
from web.formatting import local_datetime

audit = Blueprint("audit", __name__, url_prefix="/audit")


# One headline per event kind. A history may hold hundreds of events, so
# each is translated once per page and then only formatted per row.
HEADLINES = {
    "started": _l("Bắt đầu chu trình (%(definition)s, phiên bản %(version)s)"),
    "task_completed": _l("Hoàn thành: %(name)s"),
    "claimed": _l("Nhận việc: %(task)s"),
    "unclaimed": _l("Trả việc về cho địa bàn: %(task)s"),
    "reassigned": _l("Giao việc %(task)s cho %(to)s"),
    "gateway_decision": _l("Rẽ nhánh tại “%(gateway)s” → %(to)s"),
    "service_called": _l("Tác vụ tự động: %(name)s"),
    "engine_steps": _l("Hệ thống chạy các bước tự động: %(names)s"),
    "tasks_ready": _l("Việc mới sẵn sàng: %(names)s"),
    "migrated": _l("Chuyển sang %(definition)s phiên bản %(new)s (từ phiên bản %(old)s)"),
    "finished": _l("Kết thúc tại: %(end)s"),
    "cancelled": _l("Đã hủy: %(reason)s"),
    "other": _l("Sự kiện “%(kind)s”: %(element)s"),
}
# Words every row may use, translated once per page too.
ROW_WORDS = {
    "engine": _l("Hệ thống (tự động)"),
    "default_flow": _l("luồng mặc định"),
    "raw": _l("Dữ liệu gốc (JSON)"),
    "goto": _l("Xem sự kiện trên sơ đồ"),
    "previously": _l("trước đó"),
    "stars": _l("%(n)s sao"),
    "yes": _l("Có"),
    "no": _l("Không"),
}
SECTION_TITLES = {
    "start_data": _l("Dữ liệu khởi tạo"), "form": _l("Biểu mẫu đã nộp"), "set": _l("Biến quy trình được đặt"),
    "removed": _l("Biến quy trình bị xóa"), "taken": _l("Luồng đã đi"), "inputs": _l("Giá trị quyết định"),
    "params": _l("Tham số"), "result": _l("Kết quả"), "changed_elements": _l("Phần tử thay đổi"),
    "data": _l("Dữ liệu"),
}


@dataclass
class RowView:
    """A timeline row as the page shows it, in the reader's language."""

    row: timeline.TimelineRow
    headline: str
    when: str                                       # local date and time
    sections: list[tuple[str, list[tuple[str, Markup]]]]  # (title, [(label, value as HTML)])
    raw: str                                        # the event's data as recorded, JSON


class _Words:
    """Labels translated on first use and kept for the page: a long
    history asks for the same few hundred times."""

    def __init__(self):
        self._seen: dict = {}

    def table(self, table: dict) -> dict[str, str]:
        found = self._seen.get(id(table))
        if found is None:
            found = self._seen[id(table)] = {key: str(label) for key, label in table.items()}
        return found

    def __call__(self, table: dict, key, default=None) -> str:
        found = self._seen.get((id(table), key))
        if found is None:
            label = table.get(key)
            found = self._seen[(id(table), key)] = str(label) if label is not None else default
        return found


def value_html(value, yes: str, no: str, labels: dict | None = None, depth: int = 0) -> Markup:
    """A recorded value, readably: mappings as nested term lists, lists of
    plain values joined, choices by their labels, deep structures as JSON.
    Done in Python rather than a template macro: a page may hold thousands."""
    if value is None:
        return Markup('<span class="none">∅</span>')
    if isinstance(value, bool):
        return escape(yes if value else no)
    if isinstance(value, str):
        if labels and value in labels:
            return escape(labels[value])
        return escape(value) if value else Markup('<span class="none">""</span>')
    if isinstance(value, dict):
        if not value:
            return Markup('<span class="none">{}</span>')
        if depth > 2:
            return Markup("<code>%s</code>") % json.dumps(value, ensure_ascii=False, default=str)
        return Markup('<dl class="nested">%s</dl>') % Markup("").join(
            Markup("<dt>%s</dt><dd>%s</dd>") % (key, value_html(item, yes, no, None, depth + 1))
            for key, item in value.items())
    if isinstance(value, list):
        if not value:
            return Markup('<span class="none">[]</span>')
        if any(isinstance(item, (dict, list)) for item in value):
            return Markup('<ol class="nested">%s</ol>') % Markup("").join(
                Markup("<li>%s</li>") % value_html(item, yes, no, labels, depth + 1) for item in value)
        return escape(", ".join(str(labels.get(item, item)) if labels and isinstance(item, str) else str(item)
                                for item in value))
    return escape(str(value))


def row_view(row: timeline.TimelineRow, texts: dict[str, str], words: _Words, when: str,
             folded: bool = False) -> RowView:
    """`folded`: a bookkeeping row the page hides, which needs only its headline."""
    if folded:
        return RowView(row, headline(row, texts), when, [], "")
    yes, no = words(ROW_WORDS, "yes"), words(ROW_WORDS, "no")
    sections = []
    for key, pairs in row.sections:
        if not pairs:
            continue
        title = words(SECTION_TITLES, key, key)
        if key == "form":  # field labels and choice labels of the task forms
            shown = [(words(task_forms.FIELD_LABELS, name, name),
                      value_html(value, yes, no, _choices(words, name))) for name, value in pairs]
        elif key == "removed":
            shown = [(name, Markup("")) for name, _none in pairs]
        elif key == "taken":
            shown = [(str(target), Markup("<code>%s</code>") % condition if condition
                      else escape(words(ROW_WORDS, "default_flow"))) for target, condition in pairs]
        else:
            shown = [(name, value_html(value, yes, no)) for name, value in pairs]
        sections.append((title, shown))
    # Compact JSON: the C encoder (an indented dump is several times slower).
    raw = json.dumps(row.data, ensure_ascii=False, sort_keys=True, default=str)
    return RowView(row, headline(row, texts), when, sections, raw)


def _choices(words: _Words, field: str) -> dict[str, str] | None:
    """The translated choice labels of a form field (None: it has none)."""
    table = task_forms.CHOICE_LABELS.get(field)
    if not table:
        return None
    return words.table(table)


def headline(row: timeline.TimelineRow, texts: dict[str, str]) -> str:
    s, kind = row.summary, row.kind
    values = {
        "started": lambda: {"definition": s.get("definition"), "version": s.get("version")},
        "task_completed": lambda: {"name": s.get("name")},
        "claimed": lambda: {"task": row.element_name},
        "unclaimed": lambda: {"task": row.element_name},
        "reassigned": lambda: {"task": row.element_name, "to": s.get("assignee") or "?"},
        "gateway_decision": lambda: {"gateway": row.element_name, "to": ", ".join(map(str, s.get("to", [])))},
        "service_called": lambda: {"name": row.element_name},
        "engine_steps": lambda: {"names": " → ".join(map(str, s.get("names", [])))},
        "tasks_ready": lambda: {"names": ", ".join(map(str, s.get("names", [])))},
        "migrated": lambda: {"definition": s.get("definition"), "new": s.get("to_version"),
                             "old": s.get("from_version")},
        "finished": lambda: {"end": s.get("end")},
        "cancelled": lambda: {"reason": s.get("reason") or ""},
    }
    if kind in values:
        return texts[kind] % values[kind]()
    return texts["other"] % {"kind": kind, "element": row.element_name or ""}


@audit.before_request
def _auditors_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    g.audit_scope = oversight_of(actor())
    if not g.audit_scope:
        abort(403)


def _filter_from_args(args) -> AuditFilter:
    """The search form's values; a value that does not parse means no filter."""
    step = query_int("step", 1, max(labels.STEP_LABELS))
    return AuditFilter(
        product=args.get("product", "")[:200], producer=args.get("producer", "")[:200],
        commune=args.get("commune", "")[:200], step=step,
        outcome=args.get("outcome", "")[:110], started_from=_day(args.get("from")),
        started_to=_day(args.get("to")), actor=args.get("actor", "")[:200],
        page=query_int("page", 1, MAX_PAGE) or 1)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@audit.get("/")
def index():
    f = _filter_from_args(request.args)
    with reading() as session:
        page = audit_search.search(session, g.audit_scope, f)
        ends = audit_search.end_events(session, g.audit_scope)
    return render_template("audit/index.html", filter=f, page=page, end_events=ends, end_labels=labels.END_LABELS,
                           steps=labels.STEP_LABELS)


def _history(instance_id: int) -> timeline.History:
    """The instance's history, or 404 when it does not exist or is out of scope."""
    with reading() as session:
        history = timeline.load_history(session, instance_id)
    if history is None or not g.audit_scope.covers(history.instance.areas):
        abort(404)
    return history


def _require_in_scope(instance_id: int) -> None:
    with reading() as session:
        areas = audit_search.instance_areas(session, instance_id)
    if areas is None or not g.audit_scope.covers(areas):
        abort(404)


@audit.get("/instances/<int:instance_id>")
def instance(instance_id: int):
    history = _history(instance_id)
    texts = {key: str(text) for key, text in HEADLINES.items()}
    words = _Words()
    show_all = request.args.get("all") == "1"
    times: dict = {}  # the events of one engine call share their time: format each time once
    views = []
    for row in timeline.timeline_rows(history):
        if row.at not in times:
            times[row.at] = local_datetime(row.at)
        views.append(row_view(row, texts, words, times[row.at], folded=not (row.main or show_all)))
    return render_template(
        "audit/instance.html", history=history, instance=history.instance, rows=views,
        show_all=show_all, steps=labels.STEP_LABELS, viewer_built=_viewer_built(),
        roles={key: str(label) for key, label in labels.ROLE_LABELS.items()},
        decisions={key: str(label) for key, label in task_forms.CHOICE_LABELS["decision"].items()},
        words={key: str(word) for key, word in ROW_WORDS.items()})


@audit.get("/instances/<int:instance_id>/frames.json")
def frames(instance_id: int):
    history = _history(instance_id)
    return jsonify(timeline.frames_document(history))


@audit.get("/instances/<int:instance_id>/diagram.bpmn")
def diagram(instance_id: int):
    """The diagram the viewer draws: the instance's final definition."""
    with reading() as session:
        drawn = timeline.instance_diagram(session, instance_id)
    if drawn is None or not g.audit_scope.covers(drawn.areas):
        abort(404)
    response = Response(drawn.xml.encode("utf-8"), mimetype="application/xml")
    # A deployed version never changes: the browser may keep it.
    response.set_etag(drawn.sha256)
    response.cache_control.private = True
    response.cache_control.max_age = 3600
    return response.make_conditional(request)


@audit.get("/instances/<int:instance_id>/export.json")
def instance_export_json(instance_id: int):
    _require_in_scope(instance_id)
    return _download_json([instance_id], f"ocop-audit-{instance_id}")


@audit.get("/instances/<int:instance_id>/export.csv")
def instance_export_csv(instance_id: int):
    _require_in_scope(instance_id)
    return _download_csv([instance_id], f"ocop-audit-{instance_id}")


@audit.post("/instances/<int:instance_id>/verify")
def verify_instance(instance_id: int):
    """Chain, replay, and the instance's leaf in the latest signed checkpoint."""
    _require_in_scope(instance_id)
    report = verification.verify_instance(bpmn_engine(), instance_id)
    covered, key = None, public_key_or_none()
    with reading() as session:
        latest = checkpoints.latest(session)
        if latest is not None and key is not None:
            result = checkpoints.verify_document(session, checkpoints.as_file(latest), key,
                                                 instance_ids=[instance_id])
            # Both compare the instance row with its history: each finding once.
            report.problems.extend(p for p in result.problems if p not in report.problems)
            covered = result if result.covered else None
    return render_template("checkpoints/verified.html", instance_id=instance_id, report=report, checkpoint=covered)


@audit.get("/export.json")
def export_json():
    return _download_json(_filtered_ids(), _filtered_name())


@audit.get("/export.csv")
def export_csv():
    return _download_csv(_filtered_ids(), _filtered_name())


def _filtered_ids() -> list[int]:
    with reading() as session:
        return audit_search.matching_ids(session, g.audit_scope, _filter_from_args(request.args))


def _filtered_name() -> str:
    return f"ocop-audit-{bpmn_engine().clock().date().isoformat()}"


def _download_json(instance_ids: list[int], name: str) -> Response:
    with reading() as session:
        latest = checkpoints.latest(session)
        proofs = checkpoints.Proofs(latest) if latest is not None else None
    key = public_key_or_none()
    chunks = export.json_chunks(db(), instance_ids, bpmn_engine().clock(), proofs=proofs,
                                public_key_pem=checkpoints.public_key_pem(key) if key else None)
    return _download(chunks, "application/json", f"{name}.json")


def _download_csv(instance_ids: list[int], name: str) -> Response:
    return _download(export.csv_chunks(db(), instance_ids), "text/csv", f"{name}.csv")


def _download(chunks, mimetype: str, filename: str) -> Response:
    """Streamed as produced. The chunks need no request context (they open
    their own transactions), so none is kept alive while the file is sent."""
    return Response(chunks, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _viewer_built() -> bool:
    return (Path(current_app.static_folder) / "dist" / "history.js").exists()
