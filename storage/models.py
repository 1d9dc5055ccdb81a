"""SQLAlchemy 2 typed models: everything ocop-flow keeps in its database.

The schema itself is created and upgraded by Alembic (storage/migrations);
these classes are the single description both use.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Timestamps are always stored timezone-aware (UTC).
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


# --- places and people -----------------------------------------------------

JURISDICTION_LEVELS = ("central", "province", "district", "commune")


class Jurisdiction(Base):
    """An administrative unit: the central level, a province, a district
    (before July 2025) or a commune. Parents form the chain officers act on."""

    __tablename__ = "jurisdiction"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"), index=True)

    parent: Mapped[Optional[Jurisdiction]] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[Optional[str]] = mapped_column(String(200))
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The generation of the user's web sessions: every session and remember
    # cookie carries the value it was signed in with, and counts only while
    # it is still this one. Signing out (or a deactivation) adds one, which
    # ends every copy of every session of the user at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    roles: Mapped[list[RoleAssignment]] = relationship(back_populates="user", cascade="all, delete-orphan")


class RoleAssignment(Base):
    """A role held for one jurisdiction (a producer's role has none: a
    producer acts on the products of the producers it owns)."""

    __tablename__ = "role_assignment"
    __table_args__ = (UniqueConstraint("user_id", "role", "jurisdiction_id"),
                      Index("ix_role_assignment_role_area", "role", "jurisdiction_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    role: Mapped[str] = mapped_column(String(32))
    jurisdiction_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))

    user: Mapped[User] = relationship(back_populates="roles")


PRODUCER_KINDS = ("cooperative", "cooperative_group", "enterprise", "household", "farm")


class Producer(Base):
    """A "chủ thể OCOP": cooperative, cooperative group, enterprise,
    registered household business or farm."""

    __tablename__ = "producer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    commune_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    owner_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    commune: Mapped[Jurisdiction] = relationship()
    products: Mapped[list[Product]] = relationship(back_populates="producer")


class Product(Base):
    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("producer.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Criteria set code of Decision 26/2026 (S01..S26): decides the score sheet.
    group_code: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    producer: Mapped[Producer] = relationship(back_populates="products")


# --- diagrams and their running instances ----------------------------------

class ProcessDefinition(Base):
    """One immutable deployment of a BPMN file. The parsed specs are stored
    once here (serialized), never inside each instance's state."""

    __tablename__ = "process_definition"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))  # e.g. ocop_cycle, ocop_cycle_two_tier
    version: Mapped[int] = mapped_column(Integer)  # per name: 1, 2, 3 ...
    # Large columns, loaded only when asked for (the engine caches parsed specs).
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    specs: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)  # process id -> spec bundle
    author: Mapped[str] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text, default="")
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None: the national diagram; else the province this variant is for.
    province_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("name", "version"),)


CYCLE_ONCE_A_YEAR = ("status != 'cancelled' AND product_id IS NOT NULL "
                     "AND process_id = 'ocop_product_cycle'")


class ProcessInstance(Base):
    """A running or finished workflow: a product's cycle for one year, or a
    locality's outreach campaign. `version` is the optimistic lock: the
    engine writes it only with UPDATE ... WHERE id = :id AND version = :old."""

    __tablename__ = "process_instance"
    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(100))
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product.id"), index=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    # The area's chain at start, {level: jurisdiction id}: who acts for it.
    areas: Mapped[dict[str, Any]] = mapped_column(JSON)
    year: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    current_step: Mapped[Optional[int]] = mapped_column(Integer)
    end_event: Mapped[Optional[str]] = mapped_column(String(100))
    stars: Mapped[Optional[int]] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text)  # JSON of the workflow without its spec
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # Head of the audit hash chain: last sequence number and its hash.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="0" * 64)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column()

    definition: Mapped[ProcessDefinition] = relationship()
    product: Mapped[Optional[Product]] = relationship()

    # A product takes part in the cycle once a year; a cancelled cycle may be
    # restarted. Only the cycle (0017): a product's certificate, upgrade,
    # revocation and inspection instances run beside it.
    __table_args__ = (Index("uq_process_instance_product_year", "product_id", "year", unique=True,
                            sqlite_where=text(CYCLE_ONCE_A_YEAR), postgresql_where=text(CYCLE_ONCE_A_YEAR)),)


class InboxTask(Base):
    """A ready user task, kept in step with the instance's state on every
    write so inboxes never deserialize workflows. `jurisdiction_id` is the
    area whose officers holding `role` may act; for the producer role,
    `producer_id` says whose task it is."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_role_area_created", "role", "jurisdiction_id", "created_at"),
        # Partial: "unassigned" (most tasks) must not read the table through it (0013).
        Index("ix_task_assignee", "assignee_id", sqlite_where=text("assignee_id IS NOT NULL"),
              postgresql_where=text("assignee_id IS NOT NULL")),
        # Keyset pages of the whole country's tasks in the "waiting" and "due" orders (0013).
        Index("ix_task_created", "created_at", "id"),
        Index("ix_task_due", "due_at", "id"),
        # With the id: a supervisor's task ids by producer from the index alone (0010);
        # with the assignee, deadline and creation, its quick-filter counts and pages too (0013).
        Index("ix_task_producer", "producer_id", "id", "assignee_id", "due_at", "created_at"),
        # A supervisor's outreach tasks (no product) by area (programme/inbox.py, 0010).
        Index("ix_task_outreach_area", "jurisdiction_id", sqlite_where=text("product_id IS NULL"),
              postgresql_where=text("product_id IS NULL")),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product.id"))
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("producer.id"))
    element_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    jurisdiction_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))
    form_key: Mapped[str] = mapped_column(String(64))
    data_key: Mapped[str] = mapped_column(String(64))
    step: Mapped[Optional[int]] = mapped_column(Integer)
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    # Given by the diagram to `assignee_id` alone (its `assignee` property, 0016).
    personal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[Optional[datetime]] = mapped_column()
    # Set when the task's deadline timer fired and its supervisor was told.
    escalated_at: Mapped[Optional[datetime]] = mapped_column()


class TimerDue(Base):
    """When each BPMN timer an instance waits on is due: rewritten with every
    write of the instance, so the worker finds due timers with one indexed
    query instead of opening every workflow."""

    __tablename__ = "timer_due"
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    element_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    """Append-only history of an instance. Each row's hash covers its own
    content and the previous row's hash (a per-instance hash chain)."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(32))
    element_id: Mapped[Optional[str]] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- what service tasks produce --------------------------------------------

TRAINING_TOPICS = ("business_plan", "implementation")


class RegistrationWindow(Base):
    """Opened by an outreach campaign (step 1): products of this area may
    register ideas between the two dates."""

    __tablename__ = "registration_window"
    id: Mapped[int] = mapped_column(primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)


class Training(Base):
    """A training session ("tập huấn") of one topic for one area."""

    __tablename__ = "training"
    __table_args__ = (Index("ix_training_area_topic_date", "jurisdiction_id", "topic", "starts_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"))
    starts_on: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(255))
    capacity: Mapped[int] = mapped_column(Integer)
    enrolled: Mapped[int] = mapped_column(Integer, default=0)


class Enrolment(Base):
    __tablename__ = "enrolment"
    # One enrolment per instance and topic: re-running the task finds it.
    __table_args__ = (UniqueConstraint("instance_id", "topic"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    producer_id: Mapped[int] = mapped_column(ForeignKey("producer.id"), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)

    training: Mapped[Training] = relationship()


class PromotionListing(Base):
    """A 3-star-and-up product in the trade-promotion catalogue (step 6)."""

    __tablename__ = "promotion_listing"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    product_name: Mapped[str] = mapped_column(String(200))
    producer_name: Mapped[str] = mapped_column(String(200))
    commune_name: Mapped[str] = mapped_column(String(200))
    province_id: Mapped[int] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    group_code: Mapped[str] = mapped_column(String(8))
    stars: Mapped[int] = mapped_column(Integer, index=True)
    certified_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    channels: Mapped[list[Any]] = mapped_column(JSON)
    # The certificate it promotes (0017): the catalogue shows a listing only
    # while that certificate is valid. None on listings made before certificates.
    certificate_id: Mapped[Optional[int]] = mapped_column(ForeignKey("certificate.id"), index=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message for a producer or the officers of an area. Rows double as
    the outbox: delivery (e-mail, in-app) happens after commit and sets
    `delivered_at`."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), index=True)
    recipient_role: Mapped[str] = mapped_column(String(32))
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("producer.id"), index=True)
    jurisdiction_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(index=True)
    read_at: Mapped[Optional[datetime]] = mapped_column()  # unused: read state is per user (NotificationReceipt)
    # Outbox bookkeeping (background/outbox.py): a worker claims the row with a
    # conditional UPDATE before sending; a failed send is tried again at
    # `next_attempt_at`, later after every failure.
    delivery_claim: Mapped[Optional[str]] = mapped_column(String(32))
    delivery_claimed_at: Mapped[Optional[datetime]] = mapped_column()
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column()
    last_error: Mapped[Optional[str]] = mapped_column(String(500))


class NotificationReceipt(Base):
    """A notification as one user received it: written when the outbox
    delivers it in-app, so each officer of an area reads it separately.
    `emailed_at` says its e-mail to this user went out."""

    __tablename__ = "notification_receipt"
    __table_args__ = (UniqueConstraint("notification_id", "user_id"),
                      Index("ix_notification_receipt_user_read", "user_id", "read_at"),
                      Index("ix_notification_receipt_user_notification", "user_id", "notification_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    delivered_at: Mapped[datetime] = mapped_column()
    read_at: Mapped[Optional[datetime]] = mapped_column()
    emailed_at: Mapped[Optional[datetime]] = mapped_column()


class DigestSent(Base):
    """One officer's daily e-mail digest for one local day: the row is
    claimed before sending, so a second run that day sends nothing."""

    __tablename__ = "digest_sent"
    __table_args__ = (UniqueConstraint("user_id", "local_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    local_day: Mapped[date] = mapped_column(Date)
    claimed_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[Optional[datetime]] = mapped_column()
    task_count: Mapped[int] = mapped_column(Integer, default=0)
    overdue_count: Mapped[int] = mapped_column(Integer, default=0)


# --- the web application's own records -------------------------------------

class TaskDraft(Base):
    """A form saved without completing its task (one draft per task and user)."""

    __tablename__ = "task_draft"
    __table_args__ = (UniqueConstraint("task_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # Drafts go with their task's inbox row, however the task leaves the inbox.
    task_id: Mapped[str] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    """An uploaded evidence file, stored content-addressed (sha256) outside
    the database and never served as active content."""

    __tablename__ = "document"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Evidence tied to the product's criteria (ids of its set, e.g. ["A.1.1"]),
    # the cycle it was uploaded for, and until when it holds (a food-safety
    # licence, a lab test) -- all optional (0015).
    criteria: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    valid_until: Mapped[Optional[date]] = mapped_column(Date)
    instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), index=True)


class ApiToken(Base):
    """A personal token for the JSON API (`Authorization: Bearer ...`).
    Only the token's sha256 is stored: the token itself is shown once, when
    it is created, and a copy of the database cannot be used to sign in."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column()
    revoked_at: Mapped[Optional[datetime]] = mapped_column()


class AdminLogEntry(Base):
    """Append-only record of what program managers and administrators did:
    to the diagrams (deploy, activate, migrate: `subject` None, the
    definition named), and to other records named by `subject` and
    `subject_id` (a council's roster and rules: subject 'council', 0014).
    Who, when, for which province, and why. The database refuses UPDATE and
    DELETE (0005)."""

    __tablename__ = "admin_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))  # deploy | redeploy | activate | migrate | council_* | member_*
    # The diagram version acted on; None for an entry about another subject.
    definition_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_definition.id"), index=True)
    definition_name: Mapped[Optional[str]] = mapped_column(String(100))
    definition_version: Mapped[Optional[int]] = mapped_column(Integer)
    # None: a diagram entry (above); else what was changed, e.g. ('council', its id).
    subject: Mapped[Optional[str]] = mapped_column(String(32))
    subject_id: Mapped[Optional[int]] = mapped_column(Integer)
    # None: national scope; else the province the version is for.
    province_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jurisdiction.id"))
    message: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_admin_log_subject", "subject", "subject_id"),)


class AuditCheckpoint(Base):
    """A signed statement of every instance's history head at one moment:
    the Merkle root over (instance, seq, head) leaves, signed with a key
    kept outside the database. A later rewrite of any event up to a head,
    even with every hash recomputed, no longer reaches the signed head.
    Append-only in the database (0006)."""

    __tablename__ = "audit_checkpoint"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    tree_size: Mapped[int] = mapped_column(Integer)     # instances covered (leaves)
    event_count: Mapped[int] = mapped_column(Integer)   # events covered, all instances together
    root_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    statement: Mapped[str] = mapped_column(Text)        # the exact bytes signed (canonical JSON)
    signature: Mapped[str] = mapped_column(Text)        # base64 Ed25519 signature of `statement`
    leaves: Mapped[list] = mapped_column(JSON)          # [[instance_id, seq, head], ...] by instance id


INCIDENT_RETRYING, INCIDENT_OPEN, INCIDENT_RESOLVED, INCIDENT_SKIPPED = "retrying", "open", "resolved", "skipped"


class Incident(Base):
    """A service task whose handler failed. The step that reached it was
    kept (the task waits in ERROR); the worker retries it with exponential
    backoff (`retrying`), and after the last attempt it is `open` for a
    program manager to retry or skip. Closed as `resolved` or `skipped`."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    element_id: Mapped[str] = mapped_column(String(100))
    handler: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column()
    opened_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[Optional[datetime]] = mapped_column()
    closed_by: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))


# The councils' tables live in their own module; importing it here puts them
# in Base.metadata wherever the models are loaded (Alembic, the engine, tests).
from storage import council_models, recognition_models  # noqa: E402,F401
