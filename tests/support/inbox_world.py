"""The demo products and officers the inbox and task-page tests work with
(tests/test_web_inbox.py, tests/test_web_tasks.py): the products' names, a
second officer for an area, ids by name, a task's assignee, and a product
brought to the district's idea review."""
from __future__ import annotations

from sqlalchemy import select

from demo.seed import _demo_hash
from storage.models import InboxTask, Jurisdiction, RoleAssignment, User
from testkit.cycle import Cycle

PEPPER = "Hồ tiêu Gio Linh"      # HTX Gio Mỹ, commune Gio Mỹ, set S10
RICE = "Gạo hữu cơ Gio Mỹ"      # HTX Gio Mỹ, commune Gio Mỹ, set S03
HONEY = "Mật ong rừng Gio Sơn"  # commune Gio Sơn, set S04


def add_officer(world, username: str, role: str, area_code: str) -> None:
    """A second officer of an area (the demo has one per role and area);
    nothing when the sandbox already has this officer."""
    with world.db.transaction() as session:
        area = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == area_code))
        if session.scalar(select(User.id).join(RoleAssignment).where(
                User.username == username, RoleAssignment.role == role, RoleAssignment.jurisdiction_id == area)):
            return
        user = User(username=username, full_name=f"Cán bộ {username}", password_hash=_demo_hash())
        user.roles.append(RoleAssignment(role=role, jurisdiction_id=area))
        session.add(user)


def user_id(world, username: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(User.id).where(User.username == username))


def area_id(world, code: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def assignee(world, task_id: str) -> int | None:
    with world.db.transaction() as session:
        return session.get(InboxTask, task_id).assignee_id


def at_review_idea(world, product: str) -> Cycle:
    cycle = Cycle(world, product).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    return cycle
