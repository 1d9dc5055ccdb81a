"""Inbox at scale (programme/inbox.py): a program manager's tasks are found
through the producers of the province's communes and through the outreach
campaigns of its areas.

- ix_task_producer becomes (producer_id, id): the supervised task ids come
  from the index alone, so the planner keeps probing it for a large
  province instead of reading the whole task table;
- ix_task_outreach_area: outreach tasks (no product) by area, partial.

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
    op.drop_index("ix_task_producer", "task")
    op.create_index("ix_task_producer", "task", ["producer_id", "id"], unique=False)
    op.create_index("ix_task_outreach_area", "task", ["jurisdiction_id"], unique=False,
                    sqlite_where=sa.text("product_id IS NULL"), postgresql_where=sa.text("product_id IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_task_outreach_area", "task")
    op.drop_index("ix_task_producer", "task")
    op.create_index("ix_task_producer", "task", ["producer_id"], unique=False)
