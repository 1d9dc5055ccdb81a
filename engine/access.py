"""Who may act on which task: one rule, used by every caller."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

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


# Built once: every request loads its actor (building a statement costs
# more than running these two).
_ROLES_OF = select(RoleAssignment.role, RoleAssignment.jurisdiction_id).where(
    RoleAssignment.user_id == bindparam("user_id"))
_PRODUCERS_OF = select(Producer.id).where(Producer.owner_user_id == bindparam("user_id"))


def load_actor(session: Session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise LookupError(f"no active user {user_id}")
    roles = session.execute(_ROLES_OF, {"user_id": user_id}).all()
    producers = session.scalars(_PRODUCERS_OF, {"user_id": user_id}).all()
    return Actor(user.id, user.full_name, frozenset((r.role, r.jurisdiction_id) for r in roles),
                 frozenset(producers))


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
