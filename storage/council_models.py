"""The evaluation councils (Hội đồng đánh giá, phân hạng sản phẩm OCOP) as
data: each council of an area, its members with their department and
council role, and its sessions (phiên họp) with the products on their agenda.

Rosters keep their history: a member who leaves gets `removed_at`, never
deleted, so a session's minutes can always name who sat on the council.
What members scored is NOT kept here: sheets and results are the agenda
instances' audit events (programme/councils.py reads them), so `ocop audit
verify` covers what the minutes show. Migration 0014 creates these tables.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models import Base, Jurisdiction, User, utcnow

COUNCIL_LEVELS = ("district", "province", "central")
COUNCIL_ROLES = ("chair", "vice_chair", "member", "secretary")
# Roles a council has at most one active holder of.
SINGLE_ROLES = ("chair", "secretary")
SESSION_OPEN, SESSION_CLOSED = "open", "closed"


class Council(Base):
    """One council of one area (a district, a province, or the central
    level), with the rules a province may set for it: the quorum (a share of
    the active roster, and whether the chair must be present) and how far
    members' totals may differ before the product is scored again."""

    __tablename__ = "council"
    __table_args__ = (
        # One active council per level and area; retired ones stay for their minutes.
        Index("uq_council_active_area", "level", "area_id", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    quorum_fraction: Mapped[float] = mapped_column(Float, default=0.75)
    chair_required: Mapped[bool] = mapped_column(Boolean, default=True)
    spread_limit: Mapped[float] = mapped_column(Float, default=10.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    area: Mapped[Jurisdiction] = relationship()
    members: Mapped[list[CouncilMember]] = relationship(back_populates="council", order_by="CouncilMember.id")


class CouncilMember(Base):
    """A user's seat on a council, from `added_at` until `removed_at`. At
    most one active seat per user and council, and at most one active chair
    and one active secretary per council (partial unique indexes)."""

    __tablename__ = "council_member"
    __table_args__ = (
        Index("uq_council_member_active_user", "council_id", "user_id", unique=True,
              sqlite_where=text("removed_at IS NULL"), postgresql_where=text("removed_at IS NULL")),
        Index("uq_council_member_single_role", "council_id", "council_role", unique=True,
              sqlite_where=text("removed_at IS NULL AND council_role IN ('chair', 'secretary')"),
              postgresql_where=text("removed_at IS NULL AND council_role IN ('chair', 'secretary')")),
        Index("ix_council_member_user", "user_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("council.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    department: Mapped[str] = mapped_column(Text, default="")
    council_role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[Optional[datetime]] = mapped_column()

    council: Mapped[Council] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class CouncilSession(Base):
    """A meeting (phiên họp) of a council: when and where, who opened it,
    the roster as it stood (snapshot: later roster changes do not rewrite
    the minutes) and who was present."""

    __tablename__ = "council_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("council.id"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(255))
    opened_by: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    present: Mapped[list[Any]] = mapped_column()   # user ids
    roster: Mapped[list[Any]] = mapped_column()    # [{"user_id", "name", "department", "role"}]
    status: Mapped[str] = mapped_column(String(16), default=SESSION_OPEN)
    closed_at: Mapped[Optional[datetime]] = mapped_column()
    # The evaluation round the session sits in (0017); None for sessions before rounds.
    round_id: Mapped[Optional[int]] = mapped_column(ForeignKey("evaluation_round.id"), index=True)

    council: Mapped[Council] = relationship()
    agenda: Mapped[list[CouncilAgenda]] = relationship(back_populates="session", order_by="CouncilAgenda.id")


class CouncilAgenda(Base):
    """A product on a session's agenda: its instance, and the attendance
    task the session completed for it."""

    __tablename__ = "council_agenda"
    __table_args__ = (UniqueConstraint("session_id", "instance_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("council_session.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(100), default="")

    session: Mapped[CouncilSession] = relationship(back_populates="agenda")
