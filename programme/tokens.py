"""Personal API tokens: issuing one to an account, revoking it, listing an
account's tokens, and finding who a bearer token speaks for -- for the JSON
API (/api/v1) and the administration pages.

Only a token's sha256 is stored (ApiToken.token_sha256): the secret is
shown once, when the token is issued, and a copy of the database cannot be
used to call the API. A token works while it is not revoked and its
account is active.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.access import Actor, load_actor
from programme.accounts import AccountInactive, UnknownAccount
from storage.db import Database, as_utc
from storage.models import ApiToken, User

TOKEN_PREFIX = "ocop_"  # makes a leaked token recognisable (secret scanners, logs)
# last_used_at is written at most this often per token: a busy integration
# would otherwise turn every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """A bearer token that does not authenticate: unknown, revoked, or of a
    deactivated account. The message says which, for the caller."""


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: its row (holding only the digest) and the
    secret, which the caller shows once and never keeps."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class TokenHolder:
    """Who a bearer token speaks for, and which token it is."""

    actor: Actor
    token_id: int


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- issuing and revoking ----------------------------------------------------------

def issue_token(session: Session, user_id: int, name: str, now: datetime) -> tuple[ApiToken, str]:
    """A new token for the user, in the caller's transaction: the row
    (holding only the digest) and the secret, which the caller shows once.
    32 random bytes: guessing is hopeless, so a plain indexed lookup by
    digest is safe."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, name=name.strip(), token_sha256=token_digest(secret), created_at=now)
    session.add(row)
    session.flush()
    return row, secret


def create_token(db: Database, user_id: int, name: str, now: datetime) -> IssuedToken:
    """Issue a token to an active account (the signed-in user from the
    API, any account from the administration pages). Raises UnknownAccount
    or AccountInactive, having written nothing."""
    with db.transaction() as session:
        account = session.get(User, user_id)
        if account is None:
            raise UnknownAccount(user_id)
        if not account.is_active:
            raise AccountInactive(user_id)
        return IssuedToken(*issue_token(session, user_id, name, now))


def revoke_token(db: Database, user_id: int, token_id: int, now: datetime) -> ApiToken | None:
    """Revoke one of the user's tokens (it stays listed, marked revoked;
    revoking it again keeps the first time). None when the user has no such
    token: another user's token is answered like a missing one."""
    with db.transaction() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user_id:
            return None
        if token.revoked_at is None:
            token.revoked_at = now
        return token


# --- reading ---------------------------------------------------------------------------

def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """The user's tokens, newest first (revoked ones included)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


# --- authenticating a request ---------------------------------------------------------

# Built once, plain Core: every API request runs them.
_tokens, _users = ApiToken.__table__, User.__table__
_TOKEN_WITH_USER = (
    select(_tokens.c.id, _tokens.c.revoked_at, _tokens.c.last_used_at, _tokens.c.user_id,
           _users.c.is_active, _users.c.full_name)
    .join(_users, _users.c.id == _tokens.c.user_id).where(_tokens.c.token_sha256 == bindparam("digest")))
_TOKEN_USED = update(_tokens).where(_tokens.c.id == bindparam("token_id")).values(last_used_at=bindparam("at"))


def authenticate_token(db: Database, token: str, now: datetime) -> TokenHolder:
    """The actor a bearer token speaks for, noting when the token was last
    used (at most once per LAST_USED_PRECISION). Raises TokenRefused for an
    unknown or revoked token and for one of a deactivated account. One unit
    of plain Core statements, without an ORM session: it runs on every API
    request."""
    with db.statements() as connection:
        row = connection.execute(_TOKEN_WITH_USER, {"digest": token_digest(token)}).first()
        if row is None or row.revoked_at is not None:
            raise TokenRefused("unknown or revoked API token")
        if not row.is_active:
            raise TokenRefused("the token's account is deactivated")
        actor = load_actor(connection, row.user_id, row.full_name)
        if row.last_used_at is None or as_utc(row.last_used_at) < now - LAST_USED_PRECISION:
            connection.execute(_TOKEN_USED, {"token_id": row.id, "at": now})
        return TokenHolder(actor, row.id)
