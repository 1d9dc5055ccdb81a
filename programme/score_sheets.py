"""The council member's score sheet and the producer's self-assessment
(26/2026 form 02), read side for the task page (no Flask): the product's
criteria set as items grouped by section and group, each with the
producer's self-assessed level and the evidence tied to it (expired
flagged), and the totals of a set of chosen levels -- points always from
the data (storage.criteria), never typed.

Sheet data (issue 15's council contract, validated by the engine's form schema):
{"recused", "conflict_reason", "levels": {criterion_id: level_key},
 "eliminations": [key], "comments"}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.calendar import LOCAL_ZONE
from programme.documents import INLINE_TYPES
from storage.criteria import criteria_set, eliminations, level_points, scorable_items, section_maxima, sets_by_code
from storage.models import Document, InboxTask, ProcessInstance, Product

SECTIONS = ("A", "B", "C")
SAMPLES_EVIDENCE = "product_samples"  # engine.forms.EVIDENCE_KINDS: the five samples

def set_code(code: str | None, default: str = "S07") -> str:
    """The product's criteria set, or the default when it names none we have."""
    return code if code in sets_by_code() else default


def sheet_totals(code: str, levels: dict[str, str]) -> dict[str, float]:
    """{"A", "B", "C", "total"} of the chosen levels (unknown keys count 0)."""
    points = level_points(code)
    section_of = {item["id"]: item["section"] for item in scorable_items(code)}
    totals = dict.fromkeys(SECTIONS, 0.0)
    for criterion_id, key in (levels or {}).items():
        if section_of.get(criterion_id) in totals and key in points:
            totals[section_of[criterion_id]] += float(points[key] or 0)
    totals["total"] = sum(totals[s] for s in SECTIONS)
    return totals


def unknown_levels(code: str, levels: dict[str, str]) -> dict[str, str]:
    """{criterion_id: level_key} pairs that are not an item and one of its levels."""
    allowed = {item["id"]: {level["key"] for level in item["levels"]} for item in scorable_items(code)}
    return {cid: key for cid, key in (levels or {}).items() if key not in allowed.get(cid, ())}


# --- evidence ------------------------------------------------------------------

def local_today(now: datetime | None = None) -> date:
    """Today in Vietnam (an expiry date is a local date)."""
    return (now or datetime.now(timezone.utc)).astimezone(LOCAL_ZONE).date()


def is_expired(document: Document, today: date) -> bool:
    return document.valid_until is not None and document.valid_until < today


def criterion_ids(code: str) -> set[str]:
    """Every criterion id a file may be tied to: the scorable items."""
    return {item["id"] for item in scorable_items(code)}


def evidence_by_criterion(session: Session, product_id: int, instance_id: int | None,
                          today: date) -> dict[str, list[dict]]:
    """{criterion_id: [{"id", "filename", "content_type", "valid_until", "expired", "inline"}]}:
    the product's files tied to criteria, those of this cycle or of none."""
    query = select(Document).where(Document.product_id == product_id).order_by(Document.uploaded_at, Document.id)
    found: dict[str, list[dict]] = {}
    for document in session.scalars(query):
        if instance_id is not None and document.instance_id not in (None, instance_id):
            continue
        shown = document_view(document, today)
        for cid in document.criteria or []:
            found.setdefault(cid, []).append(shown)
    return found


def document_view(document: Document, today: date) -> dict:
    return {"id": document.id, "filename": document.filename, "content_type": document.content_type,
            "valid_until": document.valid_until, "expired": is_expired(document, today),
            "inline": document.content_type in INLINE_TYPES, "criteria": list(document.criteria or [])}


# --- the page -----------------------------------------------------------------

@dataclass
class SheetContext:
    code: str
    set_name: str
    product: Product | None
    sections: list[dict]               # [{"code", "title", "max_points", "groups": [{"id", "text", "items"}]}]
    eliminations: list[dict]
    maxima: dict[str, float]
    self_assessment: dict[str, str]
    samples_required: bool
    samples_in_dossier: bool | None    # None: no dossier yet
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)  # of the chosen levels
    chosen: int = 0
    item_count: int = 0


def group_of(session: Session, task: InboxTask) -> str | None:
    """The criteria set code of the task's product (None: no product)."""
    product = session.get(Product, task.product_id) if task.product_id else None
    return product.group_code if product else None


def task_data(workflow_loader, session: Session, task: InboxTask) -> dict:
    """The data the task sees (its workflow's task data), for reading:
    `workflow_loader` is BpmnEngine.load_workflow."""
    from uuid import UUID
    instance = session.get(ProcessInstance, task.instance_id)
    workflow = workflow_loader(session, instance)
    spiff_task = workflow.get_task_from_id(UUID(task.id))
    return dict(spiff_task.data) if spiff_task is not None else {}


def sheet_context(session: Session, actor: Actor, task: InboxTask, data: dict | None = None,
                  today: date | None = None, levels: dict[str, str] | None = None) -> SheetContext:
    """What the sheet page shows for this task (the caller has checked the
    actor may act on it): `data` is the task's data (task_data), `levels`
    the levels chosen so far (a draft, a refused post)."""
    data = data or {}
    product = session.get(Product, task.product_id) if task.product_id else None
    code = set_code(product.group_code if product else None)
    sheet = criteria_set(code)
    dossier = data.get("dossier") if isinstance(data.get("dossier"), dict) else {}
    own = dossier.get("self_assessment") if isinstance(dossier.get("self_assessment"), dict) else {}
    evidence = (evidence_by_criterion(session, product.id, task.instance_id, today or local_today())
                if product else {})
    sections = []
    for section in sheet["sections"]:
        groups: list[dict] = []
        for item in scorable_items(code):
            if item["section"] != section["code"]:
                continue
            if not groups or groups[-1]["id"] != item["group_id"]:
                groups.append({"id": item["group_id"], "text": item["group_text_vi"], "items": []})
            groups[-1]["items"].append({**item, "self_level": own.get(item["id"]),
                                        "evidence": evidence.get(item["id"], [])})
        sections.append({"code": section["code"], "title": section.get("title_vi", ""),
                         "max_points": section.get("max_points"), "groups": groups})
    required = bool(sheet.get("sample_products_required"))
    kinds = dossier.get("evidence") if dossier else None
    return SheetContext(
        code=code, set_name=sheet.get("name_vi", code), product=product, sections=sections,
        eliminations=eliminations(code), maxima=section_maxima(code), self_assessment=own,
        samples_required=required,
        samples_in_dossier=(SAMPLES_EVIDENCE in kinds) if isinstance(kinds, list) else None,
        evidence=evidence, totals=sheet_totals(code, levels or {}),
        chosen=len(set(levels or {}) & criterion_ids(code)), item_count=len(criterion_ids(code)))


def rank_of(data: dict, element_id: str) -> dict:
    """What a spread or sign-off task (task_spread_<level>,
    task_sign_off_<level>) is about: {"rank": the `<level>_rank` result ({}
    when there is none yet), "names": {str(user_id): name} of the panel,
    "session_id": the council session's id or None}."""
    level = element_id.rsplit("_", 1)[-1]
    rank = data.get(f"{level}_rank")
    panel = data.get(f"{level}_panel")
    session = data.get(f"{level}_session")
    return {"rank": rank if isinstance(rank, dict) else {},
            "names": {str(uid): member.get("name", uid) for uid, member in panel.items() if isinstance(member, dict)}
            if isinstance(panel, dict) else {},
            "session_id": session.get("session_id") if isinstance(session, dict) else None}


def self_assessment_summary(code: str, levels: dict[str, str]) -> dict:
    """The producer's self-assessment (form 02) as a reviewer reads it: each
    criterion with the level claimed and its points, and the totals."""
    lines = []
    for item in scorable_items(code):
        level = next((lv for lv in item["levels"] if lv["key"] == (levels or {}).get(item["id"])), None)
        lines.append({"id": item["id"], "text_vi": item["text_vi"], "section": item["section"],
                      "level": level["text_vi"] if level else None, "points": level["points"] if level else None})
    return {"lines": lines, "totals": sheet_totals(code, levels or {}), "code": code}
