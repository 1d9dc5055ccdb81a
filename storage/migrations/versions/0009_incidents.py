"""incident: a service task that failed, retried with backoff, then left
to a program manager (retry or skip).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.String(length=100), nullable=False),
        sa.Column("handler", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_incident_instance_id_process_instance")),
        sa.ForeignKeyConstraint(["closed_by"], ["user_account.id"], name=op.f("fk_incident_closed_by_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    op.create_index(op.f("ix_incident_instance_id"), "incident", ["instance_id"], unique=False)
    op.create_index("ix_incident_status_next", "incident", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incident_status_next", "incident")
    op.drop_index(op.f("ix_incident_instance_id"), "incident")
    op.drop_table("incident")
