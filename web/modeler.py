"""The diagram editor: a BPMN modeler (bpmn-js, bundled into
web/static/dist/ by scripts/build_frontend.sh) with a compact properties
panel for what the engine reads from a diagram (processes/README.md).

Program managers and administrators only. The page itself holds no data:
its script fetches /modeler/config.json (form keys, handlers with their
parameters, lane role labels, URLs, CSRF token) and the diagram (a deployed
version from /definitions/<id>.bpmn, else the shipped one from
/modeler/bundled.bpmn). Checking and deploying are the definitions
endpoints' job; this module only serves the editor.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from marshmallow import fields

from engine import forms, roles
from engine.access import may_change_diagrams
from handlers import registry
from programme import definitions as defs
from web.context import actor, query_int, reading, require_role
from web.extensions import login_manager

modeler = Blueprint("modeler", __name__, url_prefix="/modeler")

BUNDLED_DIAGRAM = Path(__file__).resolve().parent.parent / "processes" / "ocop_cycle.bpmn"
DIST = Path(__file__).resolve().parent / "static" / "dist"
EDITOR_ROLES = ("program_manager", "admin")

# marshmallow field -> the `type` written on a new spiffworkflow:parameter
# (documentation for readers of the XML; the engine evaluates `value`).
_PARAMETER_TYPES = (
    (fields.Boolean, "bool"), (fields.Integer, "int"), (fields.Float, "float"),
    (fields.Decimal, "float"), (fields.List, "list"), (fields.Dict, "dict"),
    (fields.Nested, "dict"), (fields.Date, "str"), (fields.String, "str"),
)


@modeler.before_request
def _editors_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # to the sign-in page, then back
    require_role(*EDITOR_ROLES)


@modeler.get("/")
def index():
    return render_template("modeler/index.html", built=(DIST / "modeler.js").is_file(),
                           definition_id=query_int("definition"))


@modeler.get("/bundled.bpmn")
def bundled():
    return Response(BUNDLED_DIAGRAM.read_bytes(), mimetype="application/xml",
                    headers={"Content-Disposition": "inline; filename=ocop_cycle.bpmn"})


@modeler.get("/config.json")
def config():
    root = request.script_root
    return jsonify({
        "forms": sorted(forms.FORMS),
        "handlers": [_handler(handler) for _name, handler in sorted(registry.all_handlers().items())],
        "lanes": [{"key": role.key, "label": role.label_vi, "label_en": role.label_en}
                  for role in roles.LANE_ROLES],
        "steps": [1, 2, 3, 4, 5, 6],
        "provinces": _provinces(),
        "urls": {
            "bundled": url_for("modeler.bundled"),
            "definition": root + "/definitions/{id}.bpmn",
            "validate": root + "/definitions/validate",
            "deploy": root + "/definitions/deploy",
        },
        "csrf_token": generate_csrf(),
    })


def _handler(handler: registry.Handler) -> dict:
    declared = handler.params().fields
    return {
        "name": handler.name,
        "description": handler.description,
        "parameters": [{"name": name, "required": bool(field.required), "type": _parameter_type(field)}
                       for name, field in declared.items()],
    }


def _parameter_type(field: fields.Field) -> str:
    for kind, name in _PARAMETER_TYPES:
        if isinstance(field, kind):
            return name
    return "str"


def _provinces() -> list[dict]:
    """Scopes the user may deploy for (engine.access.may_change_diagrams): the
    national diagram as `null` (administrators), then provinces."""
    with reading() as session:
        provinces = [{"id": unit.id, "name": unit.name}
                     for unit in defs.manageable_provinces(session, actor())]
    if may_change_diagrams(actor(), None):
        provinces = [{"id": None, "name": None}, *provinces]
    return provinces
