"""Diagram versions: list, download, check, dry run, deploy, activate,
compare, and migrate running instances to a version.

Program managers and administrators only (everyone else gets 403); who may
change which scope is engine.access.may_change_diagrams, whose instances a
migration lists and moves engine.access.oversight_of. Pages read through
the queries of programme/definitions.py; deploy, activate and migrate are
its use cases. Every POST carries the CSRF token: a form field, or the
X-CSRFToken header for JSON calls.
"""
from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from engine import diagram, migration
from engine.access import may_change_diagrams, oversight_of
from engine.compare import compare as compare_xml
from engine.errors import DiagramError, NotAllowed, Problem
from engine.forms import CONTROL_CHARACTERS
from programme import definitions as defs
from storage.models import ProcessDefinition
from web import labels
from web.context import actor, bpmn_engine, id_from, query_int, reading, require_role
from web.extensions import login_manager

definitions = Blueprint("definitions", __name__, url_prefix="/definitions")


@definitions.before_request
def _managers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    require_role("program_manager", "admin")


@definitions.get("/")
def index():
    return _index_page()


def _index_page(status: int = 200, form: dict | None = None):
    with reading() as session:
        versions = defs.list_versions(session)
        log = defs.admin_log(session, limit=50)
        areas = defs.province_names(session)
        provinces = defs.manageable_provinces(session, actor())
    return render_template("definitions/index.html", versions=versions, log=log, areas=areas,
                           provinces=provinces, national=may_change_diagrams(actor(), None),
                           names=sorted({v.name for v in versions}), form=form or {},
                           may_manage=lambda province_id: may_change_diagrams(actor(), province_id)), status


@definitions.get("/<int:definition_id>.bpmn")
def download(definition_id: int):
    with reading() as session:
        definition = defs.version(session, definition_id, with_xml=True)
    if definition is None:
        abort(404)
    filename = f"{definition.name}-v{definition.version}.bpmn"
    return Response(definition.bpmn_xml.encode("utf-8"), mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@definitions.post("/validate")
def validate():
    checked = diagram.check(_uploaded_xml())
    return jsonify(ok=checked.ok, errors=[_problem(p) for p in checked.problems],
                   warnings=[_problem(p) for p in checked.warnings])


@definitions.post("/dryrun")
def dryrun():
    """The diagram through the real engine on a throwaway in-memory database
    (engine.dryrun); `products` (1..200) and `seed` from the form or query."""
    from engine.dryrun import DEFAULT_PRODUCTS, DEFAULT_SEED, dry_run
    xml = _uploaded_xml()
    values = request.values
    try:
        products = min(200, max(1, int(values.get("products", DEFAULT_PRODUCTS))))
        seed = int(values.get("seed", DEFAULT_SEED))
    except ValueError:
        return jsonify(ok=False, error="products and seed must be whole numbers"), 400
    return jsonify(dry_run(xml, products, seed).to_dict())


@definitions.post("/deploy")
def deploy():
    form = request.form
    xml = _uploaded_xml()
    if form.get("check_only"):
        checked = diagram.check(xml)
        return _problems(checked.problems, checked.warnings, 422 if checked.problems else 200)
    try:
        province_id = _province_id(form.get("province_id", ""))
        definition = defs.deploy(bpmn_engine(), actor(), xml, form.get("name", ""), _message(form.get("message", "")),
                                 province_id)
    except NotAllowed as err:
        if _wants_json():
            return jsonify(ok=False, error=str(err)), 403
        abort(403, str(err))
    except DiagramError as err:
        return _problems(err.problems, [], 422)
    except defs.Refused as err:
        if _wants_json():
            return jsonify(ok=False, error=str(err)), 422
        flash(_("Không triển khai được: %(reason)s", reason=str(err)), "error")
        return _index_page(422, form)
    if _wants_json():
        return jsonify(ok=True, id=definition.id, name=definition.name, version=definition.version,
                       province_id=definition.province_id, active=definition.is_active), 201
    flash(_("Đã triển khai %(name)s phiên bản %(version)s.", name=definition.name,
            version=definition.version), "ok")
    return redirect(url_for("definitions.index"))


@definitions.post("/<int:definition_id>/activate")
def activate(definition_id: int):
    try:
        definition = defs.activate(bpmn_engine(), actor(), definition_id, _message(request.form.get("message", "")))
    except LookupError:
        abort(404)
    except NotAllowed as err:
        abort(403, str(err))
    except defs.Refused as err:
        flash(str(err), "error")
        return _index_page(422)
    except DiagramError as err:  # its dry run fails (programme.definitions.require_dry_run)
        return _problems(err.problems, [], 422)
    flash(_("Đã kích hoạt %(name)s phiên bản %(version)s.", name=definition.name,
            version=definition.version), "ok")
    return redirect(url_for("definitions.index"))


@definitions.get("/compare")
def compare():
    """Two versions side by side: a table of the element differences and,
    when the front end is built, both diagrams with the elements marked."""
    a, b = _compared()
    result = _compare(a, b)
    return render_template("definitions/compare.html", a=a, b=b, result=result,
                           viewer_built=_viewer_built())


@definitions.get("/compare.json")
def compare_json():
    a, b = _compared()
    return jsonify(a=_version_dict(a), b=_version_dict(b), **_compare(a, b))


def _compared() -> tuple[ProcessDefinition, ProcessDefinition]:
    """The versions ?a= and ?b=; without a, the previous version of b's name."""
    b_id = query_int("b")
    a_id = query_int("a")
    with reading() as session:
        b = defs.version(session, b_id, with_xml=True) if b_id else None
        if b is None:
            abort(404)
        a = defs.previous_version(session, b) if a_id is None else defs.version(session, a_id, with_xml=True)
    if a is None:
        abort(404)
    return a, b


def _compare(a: ProcessDefinition, b: ProcessDefinition) -> dict:
    try:
        return compare_xml(a.bpmn_xml, b.bpmn_xml)
    except DiagramError:
        abort(422)


def _version_dict(version: ProcessDefinition) -> dict:
    return {"id": version.id, "name": version.name, "version": version.version,
            "province_id": version.province_id,
            "url": url_for("definitions.download", definition_id=version.id)}


def _viewer_built() -> bool:
    return (Path(current_app.static_folder) / "dist" / "compare.js").exists()


@definitions.get("/<int:definition_id>/migrate")
def migrate_page(definition_id: int):
    target, sources, chosen = _migration_scope(definition_id)
    rows = _plan_rows(target, [chosen] if chosen else sources)
    return render_template("definitions/migrate.html", target=target, sources=sources, chosen=chosen,
                           steps=_step_labels(), rows=rows, result=None,
                           may_migrate=may_change_diagrams(actor(), target.province_id))


@definitions.post("/<int:definition_id>/migrate")
def migrate_run(definition_id: int):
    target, sources, chosen = _migration_scope(definition_id, request.form.get("from", type=int))
    selected = [chosen] if chosen else sources
    safe = [row["plan"].instance_id for row in _plan_rows(target, selected)
            if row["plan"].verdict == migration.SAFE]
    try:
        report = defs.migrate(bpmn_engine(), actor(), safe, target.id)
    except NotAllowed as err:
        abort(403, str(err))
    flash(_("Đã chuyển %(count)s hồ sơ sang %(name)s phiên bản %(version)s.", count=len(report.migrated),
            name=target.name, version=target.version), "ok")
    rows = _plan_rows(target, selected)
    return render_template("definitions/migrate.html", target=target, sources=sources, chosen=chosen,
                           steps=_step_labels(), rows=rows, result=report, may_migrate=True)


def _step_labels() -> dict:
    return labels.STEP_LABELS


def _migration_scope(definition_id: int, chosen_id: int | None = None):
    """The target, every other version of its name, and the chosen source (?from=)."""
    if chosen_id is None:
        chosen_id = query_int("from")
    with reading() as session:
        target = defs.version(session, definition_id)
        if target is None:
            abort(404)
        sources = defs.other_versions(session, target)
    chosen = next((s for s in sources if s.id == chosen_id), None)
    if chosen_id is not None and chosen is None:
        abort(404)
    return target, sources, chosen


def _plan_rows(target: ProcessDefinition, sources: list[ProcessDefinition]) -> list[dict]:
    """Each running instance on the sources within the user's provinces
    (administrators: all): its plan, product and current step. Another
    province's products are neither listed nor migrated from this page."""
    plans = []
    for source in sources:
        plans += migration.plan(bpmn_engine(), migration.AllOn(source.id), target.id).instances
    with reading() as session:
        overseen = defs.overseen_instances(session, oversight_of(actor()),
                                           [instance_plan.instance_id for instance_plan in plans])
    rows = []
    for instance_plan in plans:
        instance = overseen.get(instance_plan.instance_id)
        if instance is not None:
            rows.append({"plan": instance_plan, "product": instance.product, "process_id": instance.process_id,
                         "step": instance.step})
    return rows


# --- helpers -------------------------------------------------------------------------

def _uploaded_xml() -> bytes:
    """The diagram from a file field `file`, a form field `xml`, or the body."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read()
    if "xml" in request.form:
        return request.form["xml"].encode("utf-8")
    return request.get_data()


def _province_id(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    province_id = id_from(value)
    if province_id is None:
        raise defs.Refused(_("Tỉnh không hợp lệ."))
    return province_id


def _message(value: str) -> str:
    """A deploy or activation message: any text the database can store."""
    if CONTROL_CHARACTERS.search(value):
        raise defs.Refused(_("Không được chứa ký tự điều khiển."))
    return value


def _problem(problem: Problem) -> dict:
    """A diagram problem for JSON: `message` in the reader's language,
    both languages kept (message_vi, message_en)."""
    return problem.as_dict(_language())


def _language() -> str:
    return get_locale().language if get_locale() else "vi"


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _problems(problems: list[Problem], warnings: list[Problem], status: int):
    if _wants_json():
        return jsonify(ok=not problems, errors=[_problem(p) for p in problems],
                       warnings=[_problem(p) for p in warnings]), status
    return render_template("definitions/problems.html", problems=problems, warnings=warnings,
                           language=_language(), layer_labels=labels.PROBLEM_LAYER_LABELS), status
