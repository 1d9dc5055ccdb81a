"""Inbox at scale: an index for a supervisor's outreach tasks by area.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial: only outreach tasks (no product) are found by their area; a
    # product's tasks are found through its producer's commune.
    op.create_index("ix_task_outreach_area", "task", ["jurisdiction_id"], unique=False,
                    sqlite_where=sa.text("product_id IS NULL"), postgresql_where=sa.text("product_id IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_task_outreach_area", "task")
