"""Who may act on which task: one rule, used by every caller."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, null, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import connection_of
from storage.models import InboxTask, Producer, RoleAssignment, User


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


def may_act(actor: Actor, task: InboxTask) -> bool:
    """A producer acts on its own products' tasks; an officer on tasks of
    its role in its own area (the task row carries the area at the role's level)."""
    if task.role == "producer":
        return task.producer_id in actor.producer_ids
    return actor.holds(task.role, task.jurisdiction_id)


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


def overseen_provinces(actor: Actor) -> tuple[bool, frozenset[int]]:
    """Whose programme records (audit histories, the dashboard) an actor may
    read: (True, ...) for auditors and administrators, who read every
    province; else the provinces where they are program manager (empty
    for everyone else)."""
    national = any(role in ("auditor", "admin") for role, _area in actor.roles)
    managed = frozenset(area for role, area in actor.roles if role == "program_manager" and area is not None)
    return national, managed
