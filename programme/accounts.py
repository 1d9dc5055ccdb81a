"""User accounts: creating them, their roles per area, deactivating and
reactivating them, their passwords, signing in and out -- for the sign-in
pages, the administration pages, producers' own registration, the demo
seed and the tests.

Sessions are signed cookies: the server keeps no list of them, so signing
out in one browser cannot by itself end a copy of the cookie taken before
(by malware, a shared machine, a proxy). Each user row holds a session
epoch instead; a session names the user and the epoch it was signed in
with, and counts only while the row still has that epoch. Signing out adds
one to the epoch: every session and remember cookie of the user, in every
browser, ends at its next request ("sign out everywhere"). A deactivation
does the same, so reactivating an account does not revive the sessions it
had.

Refusals are exceptions (AccountRefused and its kinds); the pages word them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from engine.access import Actor, load_actor
from engine.roles import ROLES
from storage.db import Database, connection_of
from storage.models import JURISDICTION_LEVELS, Jurisdiction, Producer, RoleAssignment, User

MIN_PASSWORD_LENGTH = 8
# Roles an administrator gives: producers are linked through the producer
# they own, not through a role.
ASSIGNABLE_ROLES = tuple(key for key in ROLES if key != "producer")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
FULL_NAME_MAX = 200  # the column's length
# A hash to compare against when the user does not exist, so a wrong
# username costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


class AccountRefused(Exception):
    """A change to an account that is refused; the subclass says why."""


class UnknownAccount(AccountRefused):
    """No such user."""


class AccountInactive(AccountRefused):
    """The account is deactivated."""


class UsernameTaken(AccountRefused):
    pass


class InvalidRole(AccountRefused):
    """Not one of ASSIGNABLE_ROLES."""


class RoleAlreadyHeld(AccountRefused):
    """The user already holds this role for this area."""


class WrongAreaLevel(AccountRefused):
    """The area is missing or not of the role's level (ROLES[role].level)."""

    def __init__(self, role: str):
        super().__init__(f"role '{role}' is held for a {ROLES[role].level}")
        self.role = role


class UnknownRoleAssignment(AccountRefused):
    """No such role assignment of this user."""


class OwnAdministration(AccountRefused):
    """An administrator cannot take away their own administration: that
    could leave nobody able to undo it."""


class OwnDeactivation(AccountRefused):
    """An administrator cannot deactivate their own account."""


# --- passwords and signing in ------------------------------------------------------------

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


@dataclass(frozen=True)
class SessionAccount:
    """An account as a web session holds it: the engine's actor (roles per
    area, producers owned), the username, and the session epoch the session
    was signed in with."""

    actor: Actor
    username: str
    session_epoch: int


def session_account(session: Session, user: User) -> SessionAccount:
    """The session account of an active user just read or created in
    `session` (signing in, a producer's own registration)."""
    return SessionAccount(load_actor(session, user.id, user.full_name), user.username, user.session_epoch)


_users = User.__table__
# Built once, plain Core: every signed-in request runs the first.
_SESSION_USER = select(_users.c.id, _users.c.username, _users.c.full_name, _users.c.is_active,
                       _users.c.session_epoch).where(_users.c.id == bindparam("user_id"))
_END_SESSIONS = (update(_users).where(_users.c.id == bindparam("user_id"))
                 .values(session_epoch=_users.c.session_epoch + 1))


def live_session_account(db: Database, user_id: int, epoch: int) -> SessionAccount | None:
    """The account a web session names, or None when the session no longer
    counts: a missing or deactivated user, or an epoch the user has since
    left (signed out, deactivated). Plain Core statements, without an ORM
    session: every signed-in request runs this."""
    with db.statements() as connection:
        row = connection.execute(_SESSION_USER, {"user_id": user_id}).first()
        if row is None or not row.is_active or row.session_epoch != epoch:
            return None
        return SessionAccount(load_actor(connection, user_id, row.full_name), row.username, row.session_epoch)


def end_sessions(session: Session | Connection, user_id: int) -> None:
    """End every web session and remember cookie of the user, in the
    caller's transaction (one UPDATE; nothing to do for a missing user)."""
    connection_of(session).execute(_END_SESSIONS, {"user_id": user_id})


def sign_out(db: Database, user_id: int) -> None:
    """Sign out everywhere: every session and remember cookie of the user ends."""
    with db.transaction() as session:
        end_sessions(session, user_id)


# --- creating accounts and giving roles -----------------------------------------------------

def create_user(session: Session, username: str, full_name: str, password: str | None,
                roles: list[tuple[str, int | None]] = (), email: str | None = None) -> User:
    """A new account in the caller's transaction (open_account, a
    producer's own registration, the tests)."""
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
    if role not in ASSIGNABLE_ROLES:
        raise ValueError(f"unknown role '{role}'")
    unit = session.get(Jurisdiction, jurisdiction_id) if jurisdiction_id else None
    if unit is None or unit.level != ROLES[role].level:
        raise ValueError(f"role '{role}' is held for a {ROLES[role].level}")
    user.roles.append(RoleAssignment(role=role, jurisdiction_id=jurisdiction_id))


def open_account(db: Database, username: str, full_name: str, password: str, email: str | None = None,
                 role: str = "", area_id: int | None = None) -> int:
    """Create an account, with its first role when one is given, in one
    transaction: a refused role leaves no half-made account behind. Returns
    the new user's id. Raises UsernameTaken, or what give_role raises. The
    caller has checked the values' form (USERNAME, FULL_NAME_MAX,
    MIN_PASSWORD_LENGTH)."""
    username = username.strip().lower()
    with db.transaction() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise UsernameTaken(username)
        account = create_user(session, username, full_name, password, email=email)
        if role:
            _give_role(session, account, role, area_id)
        return account.id


def give_role(db: Database, user_id: int, role: str, area_id: int | None) -> None:
    """Give the user a role for an area. Raises UnknownAccount, InvalidRole,
    RoleAlreadyHeld or WrongAreaLevel."""
    with db.transaction() as session:
        account = session.get(User, user_id, options=[selectinload(User.roles)])
        if account is None:
            raise UnknownAccount(user_id)
        _give_role(session, account, role, area_id)


def _give_role(session: Session, account: User, role: str, area_id: int | None) -> None:
    if role not in ASSIGNABLE_ROLES:
        raise InvalidRole(role)
    if any(held.role == role and held.jurisdiction_id == area_id for held in account.roles):
        raise RoleAlreadyHeld(role)
    try:
        assign_role(session, account, role, area_id)
    except ValueError:
        raise WrongAreaLevel(role) from None


def remove_role(db: Database, user_id: int, assignment_id: int, by: Actor) -> None:
    """Take a role assignment from the user. Raises UnknownRoleAssignment
    (also for another user's), or OwnAdministration when an administrator
    would remove their own admin role."""
    with db.transaction() as session:
        assignment = session.get(RoleAssignment, assignment_id)
        if assignment is None or assignment.user_id != user_id:
            raise UnknownRoleAssignment(assignment_id)
        if assignment.role == "admin" and user_id == by.user_id:
            raise OwnAdministration(user_id)
        session.delete(assignment)


# --- deactivating ---------------------------------------------------------------------------

def deactivate(db: Database, user_id: int, by: Actor) -> None:
    """A deactivated user cannot sign in, their sessions end at their next
    request and their API tokens stop working; nothing they did is removed.
    The sessions end for good: the session epoch moves on, so a later
    reactivation does not revive them. Raises UnknownAccount, or
    OwnDeactivation for the administrator's own account."""
    with db.transaction() as session:
        account = session.get(User, user_id)
        if account is None:
            raise UnknownAccount(user_id)
        if user_id == by.user_id:
            raise OwnDeactivation(user_id)
        if account.is_active:
            end_sessions(session, user_id)
        account.is_active = False


def reactivate(db: Database, user_id: int) -> None:
    """The user may sign in again (with a new session) and their unrevoked
    tokens work again. Raises UnknownAccount."""
    with db.transaction() as session:
        account = session.get(User, user_id)
        if account is None:
            raise UnknownAccount(user_id)
        account.is_active = True


# --- what the administration pages read ------------------------------------------------------

def accounts_with_roles(session: Session) -> list[User]:
    """Every account, by username, with its roles loaded."""
    return list(session.scalars(select(User).options(selectinload(User.roles)).order_by(User.username)))


def account_with_roles(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id, options=[selectinload(User.roles)])


def area_names(session: Session) -> dict[int, str]:
    """Every area's name by id."""
    return dict(session.execute(select(Jurisdiction.id, Jurisdiction.name)).all())


def areas_by_level(session: Session) -> list[tuple[str, list[Jurisdiction]]]:
    """Areas grouped by level (central first), each group by code: the
    choices of the role form (assign_role refuses an area of another level
    than the role's)."""
    units = session.scalars(select(Jurisdiction).order_by(Jurisdiction.code)).all()
    return [(level, [unit for unit in units if unit.level == level]) for level in JURISDICTION_LEVELS]


def producers_by_owner(session: Session) -> dict[int, list[str]]:
    """user id -> names of the producers the user owns."""
    owned: dict[int, list[str]] = {}
    for owner_id, name in session.execute(select(Producer.owner_user_id, Producer.name)
                                          .where(Producer.owner_user_id.is_not(None))):
        owned.setdefault(owner_id, []).append(name)
    return owned
