"""Managing deployed diagrams: listing versions, deploying a new version,
activating an older one, migrating running instances -- with the
permission rule and the admin log -- and the queries the definitions pages
read (versions, their XML, the instances a migration would move).

Who may change which scope (engine.access.may_change_diagrams):
- the national diagram (province_id None) needs the `admin` role: the demo
  has no program manager for the central level, and a national change
  affects every province without a variant of its own;
- a province's variant needs `program_manager` of that province, or `admin`.

Each deploy and activate writes an AdminLogEntry (who, when, action,
version, province, message) in the *same* transaction as the change, so
there is never a change without its log line, nor a log line without its
change. That is why `deploy` does not call BpmnEngine.deploy (which opens
its own transaction): it runs the same steps -- the three-layer check,
the next version per name, one active version per scope through
`BpmnEngine.activate` -- inside one unit of work with the log entry.

Deploy and activate also dry-run the diagram (engine/dryrun.py,
`require_dry_run`) and refuse it when a sample product meets an error, gets
stuck or loops past the step budget: such a diagram validates, and then
breaks the first real product that takes that path. Elements the sample
products never reach stay a warning (the dry run's report says which): a
province's variant may have a branch the sample decisions do not take,
and refusing it would block a correct diagram. BpmnEngine.deploy (the
kernel, which the dry run itself uses) checks only.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, undefer

from engine import diagram, dryrun, migration
from engine.access import Actor, Oversight, may_change_diagrams
from engine.bpmn_engine import BpmnEngine
from engine.errors import DiagramError, NotAllowed, OcopError, Problem
from storage.models import AdminLogEntry, Jurisdiction, ProcessDefinition, ProcessInstance, Product

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_MESSAGE_LENGTH = 2000
_BATCH = 500  # ids per IN list: well under SQLite's limit on bound parameters

# The diagrams that ship with the product (`ocop init` deploys them).
PROCESSES_DIR = Path(__file__).resolve().parents[1] / "processes"
NATIONAL_DIAGRAM = ("ocop_cycle", PROCESSES_DIR / "ocop_cycle.bpmn")
TWO_TIER_DIAGRAM = ("ocop_cycle_two_tier", PROCESSES_DIR / "variants" / "ocop_cycle_two_tier.bpmn")


class Refused(OcopError):
    """The request itself is wrong (a bad name, an unknown province, ...)."""


def manageable_provinces(session: Session, actor: Actor) -> list[Jurisdiction]:
    """The provinces the actor may deploy a variant for."""
    provinces = session.scalars(select(Jurisdiction).where(Jurisdiction.level == "province")
                                .order_by(Jurisdiction.name)).all()
    return [p for p in provinces if may_change_diagrams(actor, p.id)]


def list_versions(session: Session) -> list[ProcessDefinition]:
    """Every deployed version, by name then newest first (the XML and specs stay unloaded)."""
    return list(session.scalars(select(ProcessDefinition)
                                .order_by(ProcessDefinition.name, ProcessDefinition.version.desc())))


def admin_log(session: Session, limit: int = 100) -> list[AdminLogEntry]:
    """The newest entries about diagrams (a council's roster changes are
    listed on the council's page, programme.councils.council_log)."""
    return list(session.scalars(select(AdminLogEntry).where(AdminLogEntry.subject.is_(None))
                                .order_by(AdminLogEntry.at.desc(), AdminLogEntry.id.desc()).limit(limit)))


def province_names(session: Session) -> dict[int, str]:
    """Province id -> name: the scopes versions and log entries name."""
    return dict(session.execute(select(Jurisdiction.id, Jurisdiction.name)
                                .where(Jurisdiction.level == "province")).all())


def version(session: Session, definition_id: int, with_xml: bool = False) -> ProcessDefinition | None:
    """One deployed version; `with_xml` loads its XML too (to download or compare)."""
    query = select(ProcessDefinition).where(ProcessDefinition.id == definition_id)
    return session.scalar(query.options(undefer(ProcessDefinition.bpmn_xml)) if with_xml else query)


def previous_version(session: Session, definition: ProcessDefinition) -> ProcessDefinition | None:
    """The version of the same name just before `definition`, with its XML loaded."""
    return session.scalar(select(ProcessDefinition).options(undefer(ProcessDefinition.bpmn_xml))
                          .where(ProcessDefinition.name == definition.name,
                                 ProcessDefinition.version < definition.version)
                          .order_by(ProcessDefinition.version.desc()).limit(1))


def other_versions(session: Session, definition: ProcessDefinition) -> list[ProcessDefinition]:
    """Every other version of the definition's name, newest first: where a
    migration to it may start from."""
    return list(session.scalars(select(ProcessDefinition).where(
        ProcessDefinition.name == definition.name, ProcessDefinition.id != definition.id)
        .order_by(ProcessDefinition.version.desc())))


@dataclass(frozen=True)
class MigratingInstance:
    """A running instance a migration plan names, as the migration page lists it."""

    instance_id: int
    product: str | None
    process_id: str
    step: int | None


def overseen_instances(session: Session, oversight: Oversight,
                       instance_ids: Iterable[int]) -> dict[int, MigratingInstance]:
    """Those of the instances the reader oversees (engine.access.Oversight),
    by id; another province's instances are left out."""
    ids = list(instance_ids)
    found = {}
    for start in range(0, len(ids), _BATCH):
        for row in session.execute(
                select(ProcessInstance.id, ProcessInstance.areas, Product.name.label("product"),
                       ProcessInstance.process_id, ProcessInstance.current_step)
                .outerjoin(Product, Product.id == ProcessInstance.product_id)
                .where(ProcessInstance.id.in_(ids[start:start + _BATCH]))):
            if oversight.covers(row.areas):
                found[row.id] = MigratingInstance(row.id, row.product, row.process_id, row.current_step)
    return found


def deploy(engine: BpmnEngine, actor: Actor, xml: bytes | str, name: str, message: str = "",
           province_id: int | None = None, activate: bool = True) -> ProcessDefinition:
    """Check the diagram and store it as the next version of `name` for the
    scope (national or one province), active by default. The same bytes as
    the latest version of the same scope are not stored twice: that version
    is returned (and activated) and the log says "redeploy".

    Raises NotAllowed, Refused, or DiagramError (nothing stored)."""
    require_scope(actor, province_id)
    name = (name or "").strip()
    message = (message or "").strip()
    if not NAME.match(name):
        raise Refused("the name must be 1-100 letters, digits, '_', '.' or '-', e.g. ocop_cycle")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise Refused(f"the message is longer than {MAX_MESSAGE_LENGTH} characters")
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    checked = diagram.check_or_raise(xml, f"{name}.bpmn")
    require_dry_run(xml)
    with engine.db.transaction() as session:  # the version and its log entry, together
        _require_province(session, province_id)
        definition, created = engine.store_definition(session, xml, checked, name, actor.name, message,
                                                      province_id, activate)
        log_action(session, engine, actor, "deploy" if created else "redeploy", definition, message)
    return definition


def activate(engine: BpmnEngine, actor: Actor, definition_id: int, message: str = "") -> ProcessDefinition:
    """Make a stored version the active one of its scope (e.g. roll back)."""
    with engine.db.transaction() as session:
        definition = session.get(ProcessDefinition, definition_id)
        if definition is None:
            raise LookupError(f"no process definition {definition_id}")
        require_scope(actor, definition.province_id)
        # Versions stored before deploys were dry-run are checked here (a roll back to one too).
        require_dry_run(version(session, definition_id, with_xml=True).bpmn_xml.encode("utf-8"))
        engine.activate(session, definition)
        log_action(session, engine, actor, "activate", definition, (message or "").strip()[:MAX_MESSAGE_LENGTH])
    return definition


def migrate(engine: BpmnEngine, actor: Actor, instances: Iterable[int] | migration.AllOn,
            target_definition_id: int) -> migration.MigrationReport:
    """Move the running instances that can safely move to the target version
    (engine/migration.py, one transaction each), and log the action. Raises
    NotAllowed unless the actor may manage the target's scope (national:
    admin; a province: its program manager or an admin)."""
    with engine.db.transaction() as session:
        require_scope(actor, migration.target_of(session, target_definition_id).province_id)
    report = migration.migrate_instances(engine, actor, instances, target_definition_id)
    with engine.db.transaction() as session:  # the action itself, in the admin log
        log_action(session, engine, actor, "migrate", session.get(ProcessDefinition, report.target_definition),
                   f"{len(report.migrated)} migrated, {len(report.skipped)} skipped, "
                   f"{len(report.failed)} failed: " + ", ".join(str(r.instance_id) for r in report.migrated))
    return report


def require_dry_run(xml: bytes) -> None:
    """Raise DiagramError (layer 'dryrun') when the dry run of a checked
    diagram with dryrun.DEPLOY_PRODUCTS sample products meets an error or a
    stuck instance; unreached elements pass (see the module's docstring)."""
    problems = _dry_run_problems(xml)
    if problems:
        raise DiagramError(list(problems))


@lru_cache(maxsize=16)
def _dry_run_problems(xml: bytes) -> tuple[Problem, ...]:
    """The dry run is deterministic (its seed, its fixed morning), so each
    process runs it once per diagram: a redeploy, `ocop init` and every
    test's bundled diagrams cost nothing after the first."""
    report = dryrun.dry_run(xml, dryrun.DEPLOY_PRODUCTS)
    problems = [Problem(f"Chạy thử: {error['error']}: {error['message']}", error["element_id"], layer="dryrun")
                for error in report.errors]
    problems += [Problem(f"Chạy thử: hồ sơ bị kẹt / stuck: {stuck['reason']} {stuck['ready'] or ''}".strip(),
                         (stuck["ready"] or [None])[0], layer="dryrun") for stuck in report.stuck]
    return tuple(problems)


def require_scope(actor: Actor, province_id: int | None) -> None:
    if not may_change_diagrams(actor, province_id):
        if province_id is None:
            raise NotAllowed("only an administrator may change the national diagram")
        raise NotAllowed("only the province's program manager or an administrator may change "
                         "this province's diagram")


def _require_province(session: Session, province_id: int | None) -> None:
    if province_id is None:
        return
    level = session.scalar(select(Jurisdiction.level).where(Jurisdiction.id == province_id))
    if level != "province":
        raise Refused(f"jurisdiction {province_id} is not a province")


def log_action(session: Session, engine: BpmnEngine, actor: Actor, action: str,
         definition: ProcessDefinition, message: str) -> None:
    """Append to the admin log, in the caller's transaction."""
    session.add(AdminLogEntry(
        at=engine.clock(), actor_id=actor.user_id, actor_name=actor.name, action=action,
        definition_id=definition.id, definition_name=definition.name,
        definition_version=definition.version, province_id=definition.province_id, message=message))


@dataclass(frozen=True)
class Deployed:
    """What deploying one diagram did."""

    name: str
    version: int
    sha256: str
    province_id: int | None
    created: bool    # a new version; False: the same bytes were already its latest version
    activated: bool  # made the active version of its scope by this deploy
    active: bool


def deploy_diagram(engine: BpmnEngine, xml: bytes, name: str, author: str, message: str = "",
                   province_id: int | None = None, activate: bool = True) -> Deployed:
    """The operator's deploy (`ocop init`, `ocop deploy`), as BpmnEngine.deploy:
    check, store as the next version unless the latest has the same bytes,
    activate -- without the page's permission check and admin log line.
    Raises DiagramError (nothing stored)."""
    checked = diagram.check_or_raise(xml, f"{name}.bpmn")
    require_dry_run(xml)
    with engine.db.transaction() as session:
        definition, created = engine.store_definition(session, xml, checked, name, author, message,
                                                      province_id, activate)
        # Unflushed: the history of is_active says whether this deploy switched it on.
        activated = definition.is_active and (created or inspect(definition).attrs.is_active.history.has_changes())
        return Deployed(definition.name, definition.version, definition.sha256, definition.province_id, created,
                        activated, definition.is_active)


def deploy_bundled(engine: BpmnEngine, author: str = "ocop init") -> list[Deployed]:
    """Deploy the national diagram; the two-tier variant is deployed too and
    activated for Lào Cai when that province exists."""
    name, path = NATIONAL_DIAGRAM
    national = deploy_diagram(engine, path.read_bytes(), name, author, "Bundled seed-era cycle (rule set 148)")
    with engine.db.reading() as session:
        lao_cai = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "LC"))
    name, path = TWO_TIER_DIAGRAM
    return [national, deploy_diagram(engine, path.read_bytes(), name, author, "Two-tier cycle after July 2025",
                                     province_id=lao_cai, activate=lao_cai is not None)]
