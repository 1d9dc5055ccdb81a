"""After the council: evaluation rounds (đợt đánh giá), recognition and
revocation decisions (quyết định), and certificates (giấy chứng nhận) with
their life: valid, replaced by a re-evaluation or an upgrade, expired,
revoked (26/2026 Art. 4-9; OCOP.md "Recognition, rounds and certificates").

Rounds are data a province can plan and change: the default calendar
(storage/round_calendar.py) only fills in the two rounds a year the rules
ask for when nobody planned them. A product joins a round when its diagram
reaches the round's level (`round_entry`, written by the `join_round`
handler), so "where does it stand" is a query, not a deserialized workflow.

A decision is one numbered act (number, date, signer) listing many
products (`decision_item`); a certificate is issued for each item that
recognises 3 stars or more. Migration 0017 creates these tables.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models import Base, Jurisdiction, utcnow

ROUND_LEVELS = ("province", "central")
ROUND_OPEN, ROUND_CLOSED = "open", "closed"

# Who issues a decision: the People's Committee of the province (3-4 stars;
# the district's did 3 stars under Decision 148), the ministry (5 stars).
AUTHORITIES = ("district", "province", "ministry")
DECISION_KINDS = ("recognition", "revocation")
# What a decision says of one product.
ITEM_RECOGNISED = "recognised"          # stars granted, a certificate issued
ITEM_PROPOSED_FIVE = "proposed_five"    # 90+ at the province: approved, proposed to the ministry
ITEM_NOT_RECOGNISED = "not_recognised"  # the ministry's result below 90 and the province re-evaluates
ITEM_REVOKED = "revoked"                # the certificate is withdrawn (Art. 8)
ITEM_OUTCOMES = (ITEM_RECOGNISED, ITEM_PROPOSED_FIVE, ITEM_NOT_RECOGNISED, ITEM_REVOKED)

# How a certificate came to be: a first evaluation, a re-evaluation before
# expiry (đánh giá, phân hạng lại) or an upgrade (nâng hạng).
CERTIFICATE_KINDS = ("new", "re_recognised", "upgraded")
CERT_VALID, CERT_EXPIRED, CERT_REVOKED, CERT_REPLACED = "valid", "expired", "revoked", "replaced"
CERTIFICATE_STATUSES = (CERT_VALID, CERT_EXPIRED, CERT_REVOKED, CERT_REPLACED)

# Art. 8.1 a-e: the grounds a certificate is revoked on.
REVOCATION_GROUNDS = ("false_information", "criteria_not_maintained", "law_violation",
                      "mark_misused", "production_stopped", "other_conclusion")


class EvaluationRound(Base):
    """One round of a province's council (province_id set) or of the
    ministry's (province_id None): dossiers proposed by `proposals_by` are
    decided before `decide_by`."""

    __tablename__ = "evaluation_round"
    __table_args__ = (UniqueConstraint("level", "province_id", "year", "number"),
                      Index("ix_round_level_area_deadline", "level", "province_id", "proposals_by"))
    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    province_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the year
    proposals_by: Mapped[date] = mapped_column(Date)
    decide_by: Mapped[date] = mapped_column(Date)
    # An extra round beyond the two the rules ask for (allowed by the council's rules).
    extra: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=ROUND_OPEN)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    province: Mapped[Optional[Jurisdiction]] = relationship()


class RoundEntry(Base):
    """A product's instance on a round's agenda: joined when its diagram
    reached the round (handler `join_round`), left when a decision listed it
    or it went elsewhere."""

    __tablename__ = "round_entry"
    __table_args__ = (UniqueConstraint("round_id", "instance_id"),
                      Index("ix_round_entry_instance", "instance_id", "left_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("evaluation_round.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[Optional[datetime]] = mapped_column()
    outcome: Mapped[Optional[str]] = mapped_column(String(32))

    round: Mapped[EvaluationRound] = relationship()


class Decision(Base):
    """A numbered administrative act: recognition of a round's products, or
    the revocation of certificates. `area_id` is the issuing body's area
    (the province, the district, or the central level for the ministry)."""

    __tablename__ = "recognition_decision"
    __table_args__ = (UniqueConstraint("area_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    authority: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    round_id: Mapped[Optional[int]] = mapped_column(ForeignKey("evaluation_round.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))      # e.g. 1234/QĐ-UBND
    signed_on: Mapped[date] = mapped_column(Date)
    signer: Mapped[str] = mapped_column(String(200))     # name and title of who signed
    summary: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list[DecisionItem]] = relationship(back_populates="decision", order_by="DecisionItem.id")
    area: Mapped[Jurisdiction] = relationship()


class DecisionItem(Base):
    """One product in a decision, with what the decision says of it."""

    __tablename__ = "decision_item"
    __table_args__ = (UniqueConstraint("decision_id", "instance_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("recognition_decision.id"), index=True)
    instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    stars: Mapped[Optional[int]] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    certificate_id: Mapped[Optional[int]] = mapped_column(ForeignKey("certificate.id"))

    decision: Mapped[Decision] = relationship(back_populates="items")


class Certificate(Base):
    """A numbered OCOP certificate, valid 36 months from its decision.
    `verify_code` is the unguessable part of the public verification link
    its QR code carries; the number alone verifies nothing."""

    __tablename__ = "certificate"
    __table_args__ = (Index("ix_certificate_status_valid_until", "status", "valid_until"),
                      Index("ix_certificate_province_status", "province_id", "status"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    verify_code: Mapped[str] = mapped_column(String(32), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("producer.id"), index=True)
    province_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"))
    commune_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"))
    group_code: Mapped[str] = mapped_column(String(8))
    producer_kind: Mapped[str] = mapped_column(String(32))
    stars: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    # The instance whose decision issued it (a cycle, a lifecycle's re-evaluation, an upgrade).
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("recognition_decision.id"), index=True)
    issued_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=CERT_VALID)
    status_changed_on: Mapped[Optional[date]] = mapped_column(Date)
    # The certificate before this one (re-evaluation, upgrade) and the one after.
    previous_id: Mapped[Optional[int]] = mapped_column(ForeignKey("certificate.id"))
    revocation_decision_id: Mapped[Optional[int]] = mapped_column(ForeignKey("recognition_decision.id"))
    revocation_ground: Mapped[Optional[str]] = mapped_column(String(32))
    # The `ocop_certificate` instance that keeps its validity (reminders, re-evaluation, expiry).
    lifecycle_instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    decision: Mapped[Decision] = relationship(foreign_keys=[decision_id])
