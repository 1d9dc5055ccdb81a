"""User accounts: creating them, their passwords, and signing in."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engine.roles import ROLES
from storage.models import Jurisdiction, RoleAssignment, User

MIN_PASSWORD_LENGTH = 8
# A hash to compare against when the user does not exist, so a wrong
# username costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password)  # scrypt, salted


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, else None."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    if not check_password_hash(stored, password) or user is None or not user.is_active:
        return None
    return user


def create_user(session: Session, username: str, full_name: str, password: str | None,
                roles: list[tuple[str, int | None]] = (), email: str | None = None) -> User:
    username = username.strip().lower()
    if not username or session.scalar(select(User.id).where(User.username == username)):
        raise ValueError(f"username '{username}' is empty or taken")
    user = User(username=username, full_name=full_name.strip(), email=email,
                password_hash=hash_password(password) if password else None)
    for role, jurisdiction_id in roles:
        assign_role(session, user, role, jurisdiction_id)
    session.add(user)
    session.flush()
    return user


def assign_role(session: Session, user: User, role: str, jurisdiction_id: int | None) -> None:
    """Give a role for an area, checking the area is of the role's level."""
    if role not in ROLES or role == "producer":
        raise ValueError(f"unknown role '{role}'")
    unit = session.get(Jurisdiction, jurisdiction_id) if jurisdiction_id else None
    if unit is None or unit.level != ROLES[role].level:
        raise ValueError(f"role '{role}' is held for a {ROLES[role].level}")
    user.roles.append(RoleAssignment(role=role, jurisdiction_id=jurisdiction_id))
