"""Notifications delivered: outbox bookkeeping on notification, per-user
receipts (read state), and the officers' daily digests.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("delivery_claim", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("delivery_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))

    op.create_table(
        "notification_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["notification.id"],
                                name=op.f("fk_notification_receipt_notification_id_notification")),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_notification_receipt_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_receipt")),
        sa.UniqueConstraint("notification_id", "user_id", name=op.f("uq_notification_receipt_notification_id")),
    )
    op.create_index("ix_notification_receipt_user_read", "notification_receipt", ["user_id", "read_at"])
    op.create_index("ix_notification_receipt_user_notification", "notification_receipt",
                    ["user_id", "notification_id"])

    op.create_table(
        "digest_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("overdue_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_digest_sent_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_sent")),
        sa.UniqueConstraint("user_id", "local_day", name=op.f("uq_digest_sent_user_id")),
    )


def downgrade() -> None:
    op.drop_table("digest_sent")
    op.drop_index("ix_notification_receipt_user_notification", "notification_receipt")
    op.drop_index("ix_notification_receipt_user_read", "notification_receipt")
    op.drop_table("notification_receipt")
    with op.batch_alter_table("notification") as batch:
        for column in ("last_error", "next_attempt_at", "delivery_attempts", "delivery_claimed_at",
                       "delivery_claim"):
            batch.drop_column(column)
