"""The task inbox and the task page.

The inbox lists ready tasks from the indexed task table (programme/inbox.py),
never from workflows. Officers claim, release and (as supervisors)
reassign tasks; everyone, producers included, opens a task they may act on,
keeps a draft of its form and completes it (programme/tasks.py). Every
engine error becomes a message and a status the user can act on; nothing
is half-done because each change is one transaction.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BuildError

from engine.access import may_act, supervision_of
from engine.errors import (
    ClaimedByOther,
    ConcurrencyConflict,
    FormInvalid,
    NotAllowed,
    ServiceTaskFailed,
    TaskNotReady,
    UnknownTask,
)
from engine.forms import DEFAULT_CRITERIA_SET, FORMS, SESSION_FORMS
from engine.roles import ROLES
from handlers.ranking import stars_for_score
from programme import inbox as inbox_queries
from programme import rounds, score_sheets, tasks
from programme.history import instance_history
from programme.inbox import DUE_SOON, SORTS, Cursor, InboxFilter
from storage.criteria import criteria_set, mandatory_criteria, section_maxima, sets_by_code, star_bands
from storage.db import as_utc
from web import labels, task_forms
from web.context import BadQueryValue, actor, bpmn_engine, db, query_int, reading
from web.rounds import AUTHORITY_OF_ROLE

ROUND_FORMS = ("council_attendance", "recognition_decision", "central_fallback")

inbox = Blueprint("inbox", __name__, url_prefix="/inbox")

SCOPES = ("area", "mine", "unassigned")


def _now() -> datetime:
    return bpmn_engine().clock()


def _urgency(due_at: datetime | None, now: datetime) -> str:
    """CSS class of a due date: overdue, due-soon (within DUE_SOON) or none."""
    if due_at is None:
        return ""
    due_at = as_utc(due_at)
    if due_at < now:
        return "overdue"
    return "due-soon" if due_at < now + DUE_SOON else ""


def _back(default: str | None = None) -> str:
    """Where to return after a POST: the page it came from, if that is one
    of this blueprint's own pages (never another host)."""
    target = request.form.get("next", "")
    if target.startswith("/inbox/") and not target.startswith("//"):
        return target
    return default or url_for("inbox.index")


def _problem(message: str, status: int, task_id: str | None = None):
    return render_template("tasks/problem.html", message=message, task_id=task_id), status


def _valid_task_id(task_id: str) -> None:
    if len(task_id) > 36:  # task ids are UUIDs: anything longer is no task
        abort(404)


# --- the inbox ------------------------------------------------------------------

def _filter_from_args(args) -> InboxFilter:
    """The filter form's values, each checked: a choice that is not one
    means "no filter", a number or page link that is not one a 400."""
    sort = args.get("sort") if args.get("sort") in SORTS else "waiting"
    try:
        after = Cursor.decode(args["after"], sort) if args.get("after") else None
    except ValueError:
        raise BadQueryValue("Liên kết trang của hộp việc không hợp lệ; hãy mở lại hộp việc từ trang đầu.",
                            "The inbox's page link is not valid; open the inbox again from its first page.") \
            from None
    return InboxFilter(
        step=query_int("step", 1, max(labels.STEP_LABELS)),
        form_key=args.get("task") if args.get("task") in FORMS else None,
        commune_id=query_int("commune"),
        group_code=args.get("group") if args.get("group") in sets_by_code() else None,
        scope=args.get("scope") if args.get("scope") in SCOPES else "area",
        overdue=args.get("overdue") == "1",
        sort=sort,
        after=after,
    )


def _capped(count: int) -> str:
    """A capped count as shown: "1000+" past programme.inbox.COUNT_CAP."""
    return f"{inbox_queries.COUNT_CAP}+" if count > inbox_queries.COUNT_CAP else str(count)


def _filter_args(f: InboxFilter, **changes) -> dict:
    """The query string of a filter (for links that keep the other filters);
    the page's own cursor is not kept (a changed filter starts at its first page)."""
    args = {"step": f.step, "task": f.form_key, "commune": f.commune_id, "group": f.group_code,
            "scope": f.scope if f.scope != "area" else None, "overdue": "1" if f.overdue else None,
            "sort": f.sort if f.sort != "waiting" else None, **changes}
    return {key: value for key, value in args.items() if value not in (None, "", False)}


@inbox.get("/")
@login_required
def index():
    me = actor()
    now = _now()
    f = _filter_from_args(request.args)
    with reading() as session:
        supervision = supervision_of(session, me)
        if not inbox_queries.has_inbox(me, supervision):
            return _problem(_("Vai trò của bạn không xử lý việc nào nên không có hộp việc."), 403)
        # The list's total comes from the counts when the filter is a quick filter.
        quick = inbox_queries.counts(session, me, now, supervision)
        listed = inbox_queries.list_tasks(session, me, f, now, supervision, tallies=quick)
        rows = listed.rows
        communes = inbox_queries.filter_choices(session, me, supervision)
        names = inbox_queries.user_names(session, [row[0].assignee_id for row in rows])
        supervised_rows = {task.id for task, _product, producer, _commune in rows
                           if supervision and supervision.covers(task, producer.commune_id if producer else None)}
        # Whom each supervised task may be handed to: one query for the page.
        team = inbox_queries.colleagues_for(session, {(task.role, task.jurisdiction_id) for task, *_rest in rows
                                                      if task.id in supervised_rows and task.role != "producer"})
        # The round a product waits in, on the rows of its council attendance or its decision.
        where = rounds.standings(session, [task.instance_id for task, *_rest in rows
                                           if task.form_key in ROUND_FORMS])
        items = []
        for task, product, producer, commune in rows:
            supervised = task.id in supervised_rows
            items.append({
                "task": task, "product": product, "producer": producer, "commune": commune,
                "can_act": may_act(me, task), "supervised": supervised,
                "assignee": names.get(task.assignee_id), "mine": task.assignee_id == me.user_id,
                "urgency": _urgency(task.due_at, now),
                "colleagues": team.get((task.role, task.jurisdiction_id), []),
                "standing": where.get(task.instance_id) if task.form_key in ROUND_FORMS else None,
            })
    groups = sets_by_code()
    return render_template(
        "inbox/index.html", items=items, total=listed.total, filter=f, counts=quick,
        next_page=listed.next.encode() if listed.next else None, communes=communes,
        groups=[(code, groups[code]["name_vi"]) for code in sorted(groups)], capped=_capped,
        steps=labels.STEP_LABELS, form_titles=labels.FORM_TITLES, roles=ROLES,
        filter_args=_filter_args, now=now)


# --- claims -----------------------------------------------------------------------

def _assignment_error(err: Exception, task_id: str):
    """One engine error of a claim, release or reassignment, as a response."""
    if isinstance(err, ClaimedByOther):
        flash(_("Việc này đã có người khác nhận."), "error")
        return redirect(_back())
    if isinstance(err, NotAllowed):
        return _problem(_("Bạn không có quyền thực hiện thao tác này với việc này."), 403, task_id)
    if isinstance(err, ConcurrencyConflict):
        return _problem(_conflict_message(), 409, task_id)
    return _problem(_("Việc này không còn chờ xử lý (đã được hoàn thành hoặc đã thay đổi)."), 404, task_id)


def _unreachable(task_id: str):
    """A task of an instance the user may not read answers exactly like a
    task that does not exist (as in the API), so claim, release and
    reassign never confirm that another area's task id is real. Inside
    the product's areas the engine then decides (403 "not allowed")."""
    with reading() as session:
        if inbox_queries.task_is_readable(session, actor(), task_id):
            return None
    return _assignment_error(UnknownTask(task_id), task_id)


@inbox.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str):
    _valid_task_id(task_id)
    if (refusal := _unreachable(task_id)) is not None:
        return refusal
    try:
        bpmn_engine().claim(task_id, actor())
    except (ClaimedByOther, NotAllowed, ConcurrencyConflict, UnknownTask) as err:
        return _assignment_error(err, task_id)
    flash(_("Bạn đã nhận việc này."), "success")
    return redirect(_back())


@inbox.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str):
    _valid_task_id(task_id)
    if (refusal := _unreachable(task_id)) is not None:
        return refusal
    try:
        bpmn_engine().unclaim(task_id, actor())
    except (ClaimedByOther, NotAllowed, ConcurrencyConflict, UnknownTask) as err:
        return _assignment_error(err, task_id)
    flash(_("Đã trả việc về cho địa bàn."), "success")
    return redirect(_back())


@inbox.post("/tasks/<task_id>/reassign")
@login_required
def reassign(task_id: str):
    _valid_task_id(task_id)
    if (refusal := _unreachable(task_id)) is not None:
        return refusal
    username = request.form.get("username", "").strip()
    with reading() as session:
        colleague = inbox_queries.active_user_named(session, username)
    if colleague is None:
        flash(_("Không tìm thấy người dùng được giao."), "error")
        return redirect(_back())
    try:
        bpmn_engine().reassign(task_id, actor(), colleague)
    except (ClaimedByOther, NotAllowed, ConcurrencyConflict, UnknownTask) as err:
        return _assignment_error(err, task_id)
    flash(_("Đã giao việc cho %(name)s.", name=colleague.name), "success")
    return redirect(_back())


# --- the task page ------------------------------------------------------------------

def _score_context(group_code: str | None, values: MultiDict) -> dict:
    """What the score sheet shows: maxima and guidance from the product's
    criteria set, the star bands, and the rows as typed with their totals."""
    code = group_code if group_code in sets_by_code() else DEFAULT_CRITERIA_SET
    sheet = criteria_set(code)
    rows = task_forms.sheet_rows(values)
    totals = [task_forms.sheet_total(row) for row in rows]
    filled = [total for row, total in zip(rows, totals) if any(v.strip() for v in row.values())]
    average = round(sum(filled) / len(filled), 2) if filled and None not in filled else None
    return {
        "code": code, "name": sheet.get("name_vi", code), "maxima": section_maxima(code),
        "sections": [{"code": section["code"], "title": section.get("title_vi", ""),
                      "max_points": section.get("max_points"),
                      "groups": [(g.get("id"), g.get("text_vi", ""), g.get("max_points"))
                                 for g in section.get("groups", [])]}
                     for section in sheet.get("sections", [])],
        "bands": [{"stars": band["stars"], "min": band["min_inclusive"]} for band in star_bands()],
        "rows": rows, "totals": totals, "average": average,
        "stars": stars_for_score(average) if average is not None else None,
        "mandatory": mandatory_criteria(code), "missed": values.getlist("minimums_missed"),
    }


def _render_task(task_id: str, values: MultiDict, errors: dict | None = None, status: int = 200,
                 problem: str | None = None, fresh: bool = False, draft_saved_at=None):
    """The task page: the form beside the product's dossier and history.
    404 when the signed-in user may not act on the task (or it is gone)."""
    me = actor()
    with reading() as session:
        task = inbox_queries.visible_task(session, me, task_id)
        if task is None and problem is not None:
            # The refusal of a post whose task left the inbox meanwhile (the
            # winner of a race completed it): the answer still stands.
            return _problem(problem, status, task_id)
        if task is None:
            abort(404)
        dossier = inbox_queries.task_dossier(session, task)
        history = instance_history(session, task.instance_id)
        assignee = inbox_queries.user_names(session, [task.assignee_id]).get(task.assignee_id)
        sheet, rank = _sheet_and_rank(session, me, task, values)
    group = dossier.product.group_code if dossier.product else None
    return render_template(
        "tasks/task.html", task=task, dossier=dossier, history=history, assignee=assignee,
        fields=task_forms.form_fields(task.form_key), values=values, errors=errors or {},
        fresh=fresh, problem=problem, draft_saved_at=draft_saved_at,
        score=_score_context(group, values) if task.form_key == "score_product" else None,
        sheet=sheet, sheet_mode=task_forms.sheet_mode(task.form_key), rank=rank,
        group_name=sets_by_code().get(group, {}).get("name_vi") if group else None,
        form_title=labels.FORM_TITLES.get(task.form_key, task.form_key),
        steps=labels.STEP_LABELS, roles=ROLES, describe=task_forms.describe,
        urgency=_urgency(task.due_at, _now()), is_producer_task=task.role == "producer",
    ), status


# Forms whose page reads the task's data (the dossier's self-assessment, the council's result).
RANK_FORMS = ("council_spread", "council_sign_off")
REVIEW_FORMS = ("advisory_review",)


def _sheet_and_rank(session, me, task, values: MultiDict):
    """The score sheet's context (council_sheet, submit_dossier) and the
    council's result a spread or sign-off task is about."""
    if not task_forms.sheet_mode(task.form_key) and task.form_key not in RANK_FORMS + REVIEW_FORMS:
        return None, None
    data = score_sheets.task_data(bpmn_engine().load_workflow, session, task)
    if task.form_key in REVIEW_FORMS:  # the advisory team reviews form 02 before the council
        claimed = (data.get("dossier") or {}).get("self_assessment") or {}
        code = score_sheets.set_code(score_sheets.group_of(session, task))
        return None, {"self_assessment": score_sheets.self_assessment_summary(code, claimed) if claimed else None}
    if task.form_key in RANK_FORMS:
        about = score_sheets.rank_of(data, task.element_id)
        about["minutes_url"] = _minutes_url(about["session_id"])
        return None, about
    return score_sheets.sheet_context(session, me, task, data, score_sheets.local_today(_now()),
                                      task_forms.posted_levels(values)), None


def _minutes_url(session_id: int | None) -> str | None:
    """The printable minutes of the council session, once its pages exist."""
    if session_id is None:
        return None
    try:
        return url_for("councils.minutes", session_id=session_id)
    except BuildError:
        return None


def _council_pages() -> str:
    """Attendance is taken on the council pages (nobody types that form)."""
    return url_for("councils.index")


def _page_recording(row) -> str:
    """Where a task that is never a typed form is recorded (SESSION_FORMS):
    a revocation on its decision page, a recognition on the authority's
    decision page, a council's attendance on the council pages."""
    if row.form_key == "revocation_decision":
        return url_for("revocations.decide", task_id=row.id)
    if row.form_key == "recognition_decision":
        return url_for("rounds.new_decision", authority=AUTHORITY_OF_ROLE.get(row.role, "province"),
                       area=row.jurisdiction_id)
    return _council_pages()


@inbox.route("/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: str):
    _valid_task_id(task_id)
    me = actor()
    with reading() as session:
        row = inbox_queries.visible_task(session, me, task_id)
    if row is not None and row.form_key in SESSION_FORMS:  # a GET or a hand-made POST alike
        return redirect(_page_recording(row))
    if request.method == "GET":
        with reading() as session:
            draft = tasks.draft_of(session, task_id, me.user_id)
        if draft is not None:
            return _render_task(task_id, MultiDict(list(_draft_items(draft.data))),
                                draft_saved_at=draft.saved_at)
        return _render_task(task_id, MultiDict(), fresh=True)

    if row is None:
        return _gone(task_id)
    with reading() as session:
        group = score_sheets.group_of(session, row)
    data, sheet_rows = task_forms.parse(row.form_key, request.form, group)
    mistakes = task_forms.sheet_errors(row.form_key, data, group)
    if mistakes:
        return _render_task(task_id, request.form, status=422, errors=mistakes,
                            problem=_("Biểu mẫu còn lỗi; chưa có gì được lưu. Hãy sửa các ô được đánh dấu."))
    try:
        # The task's drafts (anyone's) are removed in the same transaction:
        # the task is gone from every inbox.
        result = bpmn_engine().complete_task(task_id, data, me)
    except FormInvalid as err:
        return _render_task(task_id, request.form, status=422,
                            errors=task_forms.field_errors(row.form_key, err.errors, sheet_rows),
                            problem=_("Biểu mẫu còn lỗi; chưa có gì được lưu. Hãy sửa các ô được đánh dấu."))
    except ClaimedByOther:
        return _render_task(task_id, request.form, status=409,
                            problem=_("Việc này đã có người khác nhận; chỉ người nhận mới hoàn thành được."))
    except NotAllowed:
        return _render_task(task_id, request.form, status=403,
                            problem=_("Bạn không có quyền hoàn thành việc này."))
    except ConcurrencyConflict:
        return _render_task(task_id, request.form, status=409, problem=_conflict_message())
    except ServiceTaskFailed:
        return _render_task(task_id, request.form, status=502,
                            problem=_("Bước tự động sau việc này bị lỗi nên chưa có gì được lưu. "
                                      "Hãy thử lại sau hoặc báo quản lý chương trình."))
    except (UnknownTask, TaskNotReady):
        return _gone(task_id)
    flash(_success_message(row.name, result), "success")
    if row.role == "producer":
        return redirect(url_for("portal.index"))
    return redirect(url_for("inbox.index"))


def _conflict_message() -> str:
    return _("Người khác vừa thay đổi hồ sơ này; không có gì được lưu. Hãy tải lại trang và thử lại.")


def _gone(task_id: str):
    """A completion of a task no longer in the inbox: 409 with the conflict
    message when someone completed it moments ago (the request lost the
    race, whether it read the task before the winner's commit or after),
    404 otherwise."""
    with reading() as session:
        if inbox_queries.completed_lately(session, actor(), task_id):
            # Not "nothing was saved": the winner may be this user's own first click.
            return _problem(_("Việc này vừa được hoàn thành (bởi người khác hoặc từ một thẻ khác); "
                              "lần gửi này không được lưu."), 409, task_id)
    return _problem(_("Việc này không còn chờ xử lý (đã được hoàn thành hoặc đã thay đổi)."), 404, task_id)


def _success_message(name: str, result) -> str:
    if result.stars:
        return _("Đã hoàn thành \"%(name)s\". Sản phẩm được xếp hạng %(stars)s sao.", name=name, stars=result.stars)
    return _("Đã hoàn thành \"%(name)s\".", name=name)


def _draft_items(data: dict):
    """A stored draft ({name: [values]}) back as form items."""
    for key, values in (data or {}).items():
        for value in values if isinstance(values, list) else [values]:
            yield str(key), str(value)


@inbox.post("/tasks/<task_id>/draft")
@login_required
def save_draft(task_id: str):
    """Keep what was typed, without completing the task."""
    _valid_task_id(task_id)
    me = actor()
    with reading() as session:
        if inbox_queries.visible_task(session, me, task_id) is None:
            abort(404)
    data = {key: values for key, values in request.form.to_dict(flat=False).items()
            if key not in ("csrf_token", "next")}
    if sum(len(key) + sum(len(v) for v in values) for key, values in data.items()) > task_forms.MAX_DRAFT_CHARS:
        return _render_task(task_id, request.form, status=413,
                            problem=_("Bản nháp quá dài nên chưa được lưu."))
    tasks.save_draft(db(), task_id, me.user_id, data, _now())
    if request.headers.get("X-Draft-Autosave") == "1":  # the score sheet's script saves as the member clicks
        return jsonify({"saved_at": _now().isoformat()})
    flash(_("Đã lưu bản nháp. Việc chưa được hoàn thành."), "success")
    return redirect(url_for("inbox.task", task_id=task_id))
