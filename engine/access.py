"""Who may see and act on what: each rule once.

A rule is a Python predicate, for one row in hand, and -- where pages and
queries filter many rows by it -- the SQL condition beside it, so the two
are read (and changed) together. tests/test_access_policy.py checks, for
random actors and rows, that each predicate and its SQL agree.

| rule                                          | predicate            | SQL                        |
|-----------------------------------------------|----------------------|----------------------------|
| act on a task (inbox, complete, claim)        | may_act              | acting_on_tasks            |
| manage a producer: register and start its     | may_manage_producer  | managed_producers          |
| products, upload their evidence               |                      |                            |
| register producers in a commune               | registering_communes |                            |
| read a product's record (status, history,     | may_read_product     | readable_products          |
| dossier files)                                |                      |                            |
| supervise an instance: cancel it, release,    | supervises           | Supervision (supervision_of)|
| reassign its tasks, retry failed services     |                      |                            |
| oversee the programme's records (audit        | Oversight.covers     | Oversight.instances        |
| histories, dashboard)                         | (oversight_of)       |                            |
| change a scope's diagram (deploy, activate,   | may_change_diagrams  |                            |
| migrate)                                      |                      |                            |
| start the outreach campaign (cycle step 1)    | may_start_outreach   |                            |
| keep a council's roster and rules             | may_keep_council     | kept_councils              |
| see a council, its sessions and minutes       | may_see_council      | seen_councils              |
| open a council's session                      | may_open_session     |                            |
| read the OCOP report (certificates: stock,    | ReportScope.covers   | ReportScope.certificates   |
| movements, expiring)                          | (report_scope_of)    |                            |
| see (print) a certificate                     | may_see_certificate  | seen_certificates          |

Areas: every product and instance has an area chain ({"commune": id,
"district": id, "province": id, "central": id}; no district after July 2025).
A role is held for one area (`Actor.roles`: (role, area id)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, and_, bindparam, false, null, or_, select, true, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.council_models import Council, CouncilMember
from storage.db import connection_of
from storage.models import InboxTask, Jurisdiction, ProcessInstance, Producer, RoleAssignment, User
from storage.recognition_models import Certificate

NATIONAL_ROLES = ("auditor", "admin")  # read every province's records


@dataclass(frozen=True)
class Actor:
    """A user as the engine sees them: roles held per jurisdiction and the
    producers they own."""

    user_id: int
    name: str
    roles: frozenset[tuple[str, int | None]] = field(default_factory=frozenset)
    producer_ids: frozenset[int] = field(default_factory=frozenset)

    def holds(self, role: str, jurisdiction_id: int | None) -> bool:
        return (role, jurisdiction_id) in self.roles

    def areas_of(self, role: str) -> set[int]:
        return {area for held, area in self.roles if held == role and area is not None}

    @property
    def is_admin(self) -> bool:
        return any(role == "admin" for role, _area in self.roles)


# The operator's command line (`ocop migrate`): holds the admin role.
SYSTEM_ACTOR = Actor(user_id=None, name="ocop-cli (system)", roles=frozenset({("admin", None)}))

# Built once, and plain Core: every request loads its actor, and building a
# statement, or going through the ORM, costs more than running these.
_users, _roles, _producers = User.__table__, RoleAssignment.__table__, Producer.__table__
_ACTIVE_USER = select(_users.c.full_name).where(_users.c.id == bindparam("user_id"),
                                                _users.c.is_active.is_(True))
# Roles held (role, area) and producers owned (None, producer id), in one statement.
_ROLES_AND_PRODUCERS = union_all(
    select(_roles.c.role, _roles.c.jurisdiction_id).where(_roles.c.user_id == bindparam("user_id")),
    select(null(), _producers.c.id).where(_producers.c.owner_user_id == bindparam("user_id")))


def load_actor(session: Session | Connection, user_id: int, name: str | None = None) -> Actor:
    """The active user's actor, in the caller's transaction. `name` (the
    user's full name) when the caller has just read the user row and
    checked it is active, which saves reading it again."""
    connection = connection_of(session)
    if name is None:
        name = connection.execute(_ACTIVE_USER, {"user_id": user_id}).scalar()
        if name is None:
            raise LookupError(f"no active user {user_id}")
    roles, producers = set(), set()
    for role, value in connection.execute(_ROLES_AND_PRODUCERS, {"user_id": user_id}):
        if role is None:
            producers.add(value)
        else:
            roles.add((role, value))
    return Actor(user_id, name, frozenset(roles), frozenset(producers))


# --- acting on a task ------------------------------------------------------------------

def may_act(actor: Actor, task) -> bool:
    """A producer acts on its own products' tasks; an officer on tasks of
    its role in its own area (the task row carries the area at the role's
    level). `task`: anything with role, jurisdiction_id and producer_id. A
    producer's task is its owner's alone, whatever roles others hold."""
    if task.role == "producer":
        return task.producer_id in actor.producer_ids
    return task.jurisdiction_id is not None and actor.holds(task.role, task.jurisdiction_id)


def acting_on_tasks(actor: Actor):
    """SQL on InboxTask: may_act.

    One `role = :role AND jurisdiction_id IN (:areas)` per role held, so
    both databases walk ix_task_role_area_created on both columns (SQLite
    reads a row-value IN list through the index's first column only)."""
    areas_by_role: dict[str, set[int]] = {}
    for role, area in actor.roles:
        if area is not None and role != "producer":
            areas_by_role.setdefault(role, set()).add(area)
    conditions = [and_(InboxTask.role == role, InboxTask.jurisdiction_id.in_(sorted(areas)))
                  for role, areas in sorted(areas_by_role.items())]
    if actor.producer_ids:
        conditions.append(and_(InboxTask.role == "producer", InboxTask.producer_id.in_(sorted(actor.producer_ids))))
    return or_(*conditions) if conditions else false()


# --- managing producers ----------------------------------------------------------------

def may_manage_producer(actor: Actor, producer_id: int | None, commune_id: int | None) -> bool:
    """Register and start a producer's products, upload their evidence: the
    producer's owner or its commune's OCOP officer."""
    return producer_id in actor.producer_ids or (
        commune_id is not None and actor.holds("commune_officer", commune_id))


def managed_producers(actor: Actor):
    """SQL on Producer: may_manage_producer."""
    condition = Producer.id.in_(sorted(actor.producer_ids))
    communes = registering_communes(actor)
    if communes:
        condition = condition | Producer.commune_id.in_(communes)
    return condition


def registering_communes(actor: Actor) -> list[int]:
    """Communes where the actor is the OCOP officer: may register producers there."""
    return sorted(actor.areas_of("commune_officer"))


# --- reading a product's record ----------------------------------------------------------

def may_read_product(actor: Actor, producer_id: int | None, areas) -> bool:
    """Read a product's record (status, history, dossier files): its
    producer; anyone holding a role for one of the product's areas -- its
    commune, district, province, or the central level (national councils
    score 5-star candidates); and auditors, who read everything and change
    nothing. `areas` are the jurisdiction ids of the product's chain."""
    if producer_id is not None and producer_id in actor.producer_ids:
        return True
    areas = set(areas)
    return any(role == "auditor" or area in areas for role, area in actor.roles)


def readable_products(actor: Actor, producer_id, commune, up1, up2):
    """SQL: may_read_product, for a product whose producer id column is
    `producer_id` and whose commune and its ancestors are the Jurisdiction
    aliases `commune`, `up1` (its parent) and `up2` (its grandparent),
    outer-joined: a chain is at most commune, district, province, central."""
    if any(role == "auditor" for role, _area in actor.roles):
        return true()
    areas = sorted({area for _role, area in actor.roles if area is not None})
    conditions = []
    if actor.producer_ids:
        conditions.append(producer_id.in_(sorted(actor.producer_ids)))
    if areas:
        conditions.append(or_(commune.id.in_(areas), commune.parent_id.in_(areas),
                              up1.parent_id.in_(areas), up2.parent_id.in_(areas)))
    return or_(*conditions) if conditions else false()


# --- supervising instances ----------------------------------------------------------------

def supervises(actor: Actor, areas) -> bool:
    """Cancel an instance, release or reassign its tasks, retry or skip its
    failed service tasks: program managers of its province and
    administrators. `areas` is the instance's area chain ({level: id}); a
    role held for no area (only a forged row has one) covers nothing."""
    province = areas.get("province")
    return actor.is_admin or (province is not None and actor.holds("program_manager", province))


@dataclass(frozen=True)
class Supervision:
    """SQL on InboxTask: supervises, as the areas whose tasks a supervisor
    sees, releases and reassigns without holding the tasks' roles: every
    area of its provinces (the province and all below it), or everything."""

    everything: bool = False
    area_ids: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.everything or bool(self.area_ids)

    def task_ids(self, *columns) -> list[Select]:
        """Selects of the supervised tasks' ids (or of these columns of
        them, for a caller that reads them without a lookup by id), each served by an index.
        A product's task belongs to the province its producer's commune is
        in, whatever level acts on it (central council tasks included):
        producers by commune (ix_producer_commune_id), then their tasks
        (ix_task_producer). An outreach task (no product) belongs to the
        area it runs in (ix_task_outreach_area)."""
        # One expanding parameter for a province's ~150 areas, not one
        # bound expression built per area and statement.
        areas = sorted(self.area_ids)
        columns = columns or (InboxTask.id,)
        return [select(*columns).join(Producer, Producer.id == InboxTask.producer_id)
                .where(Producer.commune_id.in_(bindparam("supervised_communes", areas, expanding=True)))
                .correlate(None),
                select(*columns).where(InboxTask.product_id.is_(None), InboxTask.jurisdiction_id.in_(
                    bindparam("supervised_areas", areas, expanding=True))).correlate(None)]

    def condition(self):
        if self.everything:
            return true()
        if not self.area_ids:
            return false()
        return InboxTask.id.in_(union_all(*self.task_ids()))

    def covers(self, task, commune_id: int | None) -> bool:
        """One task row (and its product's commune): the same as condition()."""
        if self.everything:
            return True
        if task.product_id is None:
            return task.jurisdiction_id in self.area_ids
        return commune_id in self.area_ids


def supervision_of(session: Session, actor: Actor) -> Supervision:
    """What the actor supervises: administrators everything, a program
    manager every area of its province (the province and all below it; a
    program manager's role held for anything but a province, which only a
    forged row can do, supervises nothing, as in `supervises`)."""
    if actor.is_admin:
        return Supervision(everything=True)
    managed = sorted(actor.areas_of("program_manager"))
    frontier = set(session.scalars(select(Jurisdiction.id).where(
        Jurisdiction.id.in_(managed), Jurisdiction.level == "province"))) if managed else set()
    areas = set(frontier)
    while frontier:  # province -> districts -> communes: two rounds
        found = {area: level for area, level in session.execute(
            select(Jurisdiction.id, Jurisdiction.level).where(Jurisdiction.parent_id.in_(frontier)))
            if area not in areas}
        areas.update(found)
        # Communes are the leaves: asking for their children (a statement
        # with a province's ~150 ids) would only ever find none.
        frontier = {area for area, level in found.items() if level != "commune"}
    return Supervision(area_ids=frozenset(areas))


# --- overseeing the programme's records ------------------------------------------------

@dataclass(frozen=True)
class Oversight:
    """Whose programme records (audit histories, the dashboard) an actor
    reads: every province (auditors and administrators) or the provinces
    where they are program manager; nobody else any."""

    everything: bool = False
    province_ids: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.everything or bool(self.province_ids)

    def covers(self, areas: dict | None) -> bool:
        """One instance, by its area chain ({level: id}: it names the province)."""
        return self.everything or (areas or {}).get("province") in self.province_ids

    def instances(self):
        """SQL on ProcessInstance: covers (the instance's area lies in one of the provinces)."""
        if self.everything:
            return true()
        if not self.province_ids:
            return false()
        return ProcessInstance.jurisdiction_id.in_(areas_under(self.province_ids))


def oversight_of(actor: Actor) -> Oversight:
    if any(role in NATIONAL_ROLES for role, _area in actor.roles):
        return Oversight(everything=True)
    return Oversight(province_ids=frozenset(actor.areas_of("program_manager")))


def areas_under(province_ids) -> Select:
    """Ids of the provinces and every area below them (districts, communes;
    a commune may hang directly under its province since July 2025). Ids
    that are not provinces name nothing."""
    provinces = select(Jurisdiction.id).where(Jurisdiction.id.in_(list(province_ids)),
                                              Jurisdiction.level == "province")
    children = select(Jurisdiction.id).where(Jurisdiction.parent_id.in_(provinces))
    return select(Jurisdiction.id).where(or_(Jurisdiction.id.in_(provinces),
                                             Jurisdiction.parent_id.in_(provinces),
                                             Jurisdiction.parent_id.in_(children)))


# --- changing diagrams, starting outreach ------------------------------------------------

def may_change_diagrams(actor: Actor, province_id: int | None) -> bool:
    """Deploy, activate and migrate in a scope: the national diagram
    (province_id None) needs the admin role (the national change affects
    every province without a variant of its own); a province's variant its
    program manager, or an administrator."""
    if actor.is_admin:
        return True
    return province_id is not None and actor.holds("program_manager", province_id)


def may_start_outreach(actor: Actor, jurisdiction_id: int, areas) -> bool:
    """Start cycle step 1 (the outreach campaign) in a locality: its own
    OCOP officer (district, or commune directly under a province), its
    province's program manager, or an administrator of the central level."""
    return any(area is not None and actor.holds(role, area) for role, area in (
        ("district_officer", jurisdiction_id), ("commune_officer", jurisdiction_id),
        ("program_manager", areas.get("province")), ("admin", areas.get("central"))))


# --- councils ------------------------------------------------------------------------------

def may_keep_council(actor: Actor, areas) -> bool:
    """Create a council, change its rules and its roster: the program
    manager of the province its area lies in (the province's council, or a
    council of one of its districts), or an administrator; the central
    council, administrators only. `areas` is the council's area chain
    ({level: id}): the same rule as `supervises`."""
    return supervises(actor, areas)


def kept_councils(supervision: Supervision):
    """SQL on Council: may_keep_council, given the actor's
    supervision_of(...) (every area of its provinces, or everything)."""
    if supervision.everything:
        return true()
    if not supervision.area_ids:
        return false()
    return Council.area_id.in_(sorted(supervision.area_ids))


def may_see_council(actor: Actor, areas, member_ids) -> bool:
    """See a council, its sessions and their minutes: its active members
    (`member_ids`), those who keep it (may_keep_council), and auditors, who
    read everything and change nothing. Anyone else, a member of another
    council included, does not see it at all."""
    return (actor.user_id in set(member_ids) or may_keep_council(actor, areas)
            or any(role == "auditor" for role, _area in actor.roles))


def seen_councils(actor: Actor, supervision: Supervision):
    """SQL on Council: may_see_council (`supervision`: supervision_of(...))."""
    if any(role == "auditor" for role, _area in actor.roles):
        return true()
    member_of = select(CouncilMember.council_id).where(CouncilMember.user_id == actor.user_id,
                                                       CouncilMember.removed_at.is_(None))
    return or_(Council.id.in_(member_of), kept_councils(supervision))


def may_open_session(actor: Actor, areas, chair_id: int | None, secretary_id: int | None) -> bool:
    """Open a session of a council (record attendance, put products on its
    agenda): its secretary or its chair, or whoever keeps the council."""
    return (actor.user_id is not None and actor.user_id in (chair_id, secretary_id)) or may_keep_council(actor, areas)



# --- the OCOP report ------------------------------------------------------------------------

# The nation's report: auditors and administrators read everything, the
# ministry reports on every province. The province's: its program managers
# and its People's Committee.
REPORT_NATIONAL_ROLES = ("auditor", "admin", "ministry")
REPORT_PROVINCE_ROLES = ("program_manager", "province_committee")


@dataclass(frozen=True)
class ReportScope:
    """Whose certificates the OCOP report counts for an actor: every
    province's, or those of the provinces where the actor is program
    manager or sits on the People's Committee; nobody else any."""

    everything: bool = False
    province_ids: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.everything or bool(self.province_ids)

    def covers(self, province_id: int | None) -> bool:
        """One certificate (or one province's figures), by its province."""
        return self.everything or (province_id is not None and province_id in self.province_ids)

    def certificates(self):
        """SQL on Certificate: covers (a certificate carries its product's province)."""
        if self.everything:
            return true()
        if not self.province_ids:
            return false()
        return Certificate.province_id.in_(sorted(self.province_ids))


def report_scope_of(actor: Actor) -> ReportScope:
    if any(role in REPORT_NATIONAL_ROLES for role, _area in actor.roles):
        return ReportScope(everything=True)
    return ReportScope(province_ids=frozenset(
        area for role, area in actor.roles if role in REPORT_PROVINCE_ROLES and area is not None))
# --- certificates ---------------------------------------------------------------------------

def may_see_certificate(actor: Actor, producer_id: int | None, areas) -> bool:
    """See and print a product's certificate (the public verification page
    shows less to anyone): its producer; officers holding a role for one of
    the certificate's areas (commune, district, province -- its program
    manager and People's Committee included -- and the central level);
    auditors; administrators. `areas` are the ids of the certificate's
    commune chain. Anyone else, a producer of another product or an officer
    of another province, does not see it at all."""
    return actor.is_admin or may_read_product(actor, producer_id, areas)


def seen_certificates(actor: Actor, producer_id, commune, up1, up2):
    """SQL: may_see_certificate, for a certificate whose producer id column
    is `producer_id` and whose commune and its ancestors are the
    Jurisdiction aliases `commune`, `up1`, `up2` (as readable_products)."""
    if actor.is_admin:
        return true()
    return readable_products(actor, producer_id, commune, up1, up2)
# --- after recognition: revocation and inspection (26/2026 Art. 8-9) ------------------------

# Who may open a revocation on a conclusion, and start or plan inspections
# of a province's certificates: its OCOP coordination office and its program
# manager; the ministry too for 5 stars (it inspects and revokes those).
CERTIFICATE_KEEPERS = ("province_office", "program_manager")


def revocation_authority(stars: int) -> str:
    """The role whose decision revokes a certificate of `stars`: the ministry
    for 5 stars, the province's People's Committee for 3 and 4 (Art. 8.2)."""
    return "ministry" if stars == 5 else "province_committee"


def may_look_after_certificate(actor: Actor, stars: int, areas) -> bool:
    """Open a revocation of a certificate, start or plan its inspection.
    `areas`: the certificate's product's area chain ({level: id})."""
    province, central = areas.get("province"), areas.get("central")
    if province is not None and any(actor.holds(role, province) for role in CERTIFICATE_KEEPERS):
        return True
    return stars == 5 and central is not None and actor.holds("ministry", central)


def looked_after_certificates(actor: Actor, province_column, stars_column):
    """SQL: may_look_after_certificate (and the committees that decide), on a
    certificate's province and stars columns: the lists of open revocations
    and inspections. The ministry sees every 5-star certificate."""
    provinces = sorted(set().union(*(actor.areas_of(role) for role in CERTIFICATE_KEEPERS + ("province_committee",))))
    conditions = [province_column.in_(provinces)] if provinces else []
    if actor.areas_of("ministry"):
        conditions.append(stars_column == 5)
    return or_(*conditions) if conditions else false()


def may_see_certificate_case(actor: Actor, stars: int, areas) -> bool:
    """The predicate of looked_after_certificates, for one case."""
    province = areas.get("province")
    return (may_look_after_certificate(actor, stars, areas)
            or (province is not None and actor.holds("province_committee", province))
            or (stars == 5 and bool(actor.areas_of("ministry"))))


def may_decide_revocation(actor: Actor, stars: int, task) -> bool:
    """Record the decision of a revocation task: the authority for the
    certificate's stars, for the task's area, and the task is that
    authority's (a diagram that puts it in another lane decides nothing)."""
    role = revocation_authority(stars)
    return task.role == role and task.jurisdiction_id is not None and actor.holds(role, task.jurisdiction_id)
# --- a certificate's life (issue 16) --------------------------------------------------------------

def may_request_upgrade(actor: Actor, producer_id: int | None) -> bool:
    """Ask for an upgrade (nâng hạng) of a certified product: its producer
    alone (the dossier is theirs to file; officers act on it afterwards)."""
    return producer_id is not None and producer_id in actor.producer_ids


def requesting_upgrades(actor: Actor, producer_id):
    """SQL: may_request_upgrade, for a certificate whose producer id column is `producer_id`."""
    return producer_id.in_(sorted(actor.producer_ids)) if actor.producer_ids else false()
# --- rounds and recognition decisions (issue 16) ------------------------------------------

# Who signs a recognition decision: the lane role of the authority, at its area's level.
AUTHORITY_ROLES = {"district": "district_committee", "province": "province_committee", "ministry": "ministry"}
# Who reads rounds and decisions besides those who plan or sign them.
ROUND_READERS = ("program_manager", "province_committee", "district_committee", "province_office",
                 "province_council", "district_council", "province_advisory")


def may_plan_rounds(actor: Actor, level: str, province_id: int | None) -> bool:
    """Plan a year's rounds, change their dates, add an extra round, close
    one: for a province's rounds, its program manager or an administrator;
    for the ministry's (province_id None), an administrator or a holder of
    the ministry role."""
    if actor.is_admin:
        return True
    if level == "central":
        return any(role == "ministry" for role, _area in actor.roles)
    return province_id is not None and actor.holds("program_manager", province_id)


def may_see_rounds(actor: Actor, province_id: int | None) -> bool:
    """See a province's rounds, their agendas and decisions (province_id
    None: the ministry's): who plans them, the province's committee, OCOP
    office, advisory team and council, the ministry, the central council,
    auditors and administrators. (A district's committee reads what waits
    for its own decisions: may_issue_decision.)"""
    if actor.is_admin or any(role in ("auditor", "ministry", "central_council") for role, _a in actor.roles):
        return True
    if province_id is None:
        return False
    return any(role in ROUND_READERS and area == province_id for role, area in actor.roles)


def may_issue_decision(actor: Actor, authority: str, area_id: int) -> bool:
    """Record a numbered recognition decision: the holder of the
    authority's role (Ủy ban nhân dân huyện / tỉnh, the ministry) for the
    issuing area itself. Nobody else, administrators included: a decision
    is the signed act of that body."""
    role = AUTHORITY_ROLES.get(authority)
    return role is not None and actor.holds(role, area_id)
