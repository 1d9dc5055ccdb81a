"""timer_due: when each waiting BPMN timer fires (for the worker); task.escalated_at.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "timer_due",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.String(length=100), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_timer_due_instance_id_process_instance")),
        sa.PrimaryKeyConstraint("instance_id", "element_id", name=op.f("pk_timer_due")),
    )
    op.create_index(op.f("ix_timer_due_due_at"), "timer_due", ["due_at"], unique=False)
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("escalated_at")
    op.drop_index(op.f("ix_timer_due_due_at"), "timer_due")
    op.drop_table("timer_due")
