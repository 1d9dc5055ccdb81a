"""Failed service tasks (engine/incidents.py) for the people who fix them.

Program managers see the incidents of their provinces, auditors and
administrators all of them (engine.access.oversight_of); program
managers and administrators may retry or skip one (the engine checks that
they supervise the instance's province). Out-of-scope ids answer 404.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.access import oversight_of
from engine.errors import ConcurrencyConflict, NotAllowed, OcopError
from programme import incidents as incident_queries
from web.context import actor, bpmn_engine, reading, require_role

incidents = Blueprint("incidents", __name__, url_prefix="/incidents")


def _scope():
    scope = oversight_of(actor())
    if not scope:
        abort(403)
    return scope


@incidents.get("/")
@login_required
def index():
    scope = _scope()
    with reading() as session:
        rows = incident_queries.overseen_incidents(session, scope, limit=300)
    return render_template("incidents/index.html", rows=rows)


@incidents.post("/<int:incident_id>/<any(retry, skip):action>")
@login_required
def act(incident_id: int, action: str):
    scope = _scope()
    require_role("program_manager", "admin")  # auditors read incidents, never act on them
    with reading() as session:
        areas = incident_queries.incident_areas(session, incident_id)
    if areas is None or not scope.covers(areas):
        abort(404)
    try:
        if action == "retry":
            bpmn_engine().retry_incident(incident_id, actor())
        else:
            bpmn_engine().skip_incident(incident_id, actor())
    except ConcurrencyConflict:
        flash(_("Hồ sơ vừa thay đổi; vui lòng thử lại."), "error")
    except NotAllowed:
        abort(403)  # e.g. an auditor: reads every incident, acts on none
    except OcopError as err:
        flash(str(err), "error")
    else:
        with reading() as session:
            status = incident_queries.incident_status(session, incident_id)
        flash(_("Sự cố đã được xử lý.") if status in ("resolved", "skipped")
              else _("Vẫn lỗi: đã ghi thêm một lần thử."), "success" if status in ("resolved", "skipped") else "error")
    return redirect(url_for("incidents.index"))
