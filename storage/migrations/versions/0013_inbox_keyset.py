"""Inbox pages by keyset and capped counts (programme/inbox.py), served by
indexes at national scale (an administrator's inbox is every task):

- ix_task_created (created_at, id) and ix_task_due (due_at, id): a page in
  the "waiting" and "due" orders is the next 26 entries of an index;
- ix_task_assignee becomes partial (assignee_id IS NOT NULL): "my tasks"
  still uses it, and "unassigned" (most tasks) can no longer pick it and
  read nearly the whole table through it (SQLite did);
- ix_task_producer becomes (producer_id, id, assignee_id, due_at,
  created_at): a supervisor's quick-filter counts and pages read its
  province's tasks from the index alone (programme.inbox._scope_rows), not
  each task's row again by its id.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_created", "task", ["created_at", "id"], unique=False)
    op.create_index("ix_task_due", "task", ["due_at", "id"], unique=False)
    op.drop_index("ix_task_assignee", "task")
    op.create_index("ix_task_assignee", "task", ["assignee_id"], unique=False,
                    sqlite_where=sa.text("assignee_id IS NOT NULL"),
                    postgresql_where=sa.text("assignee_id IS NOT NULL"))
    op.drop_index("ix_task_producer", "task")
    op.create_index("ix_task_producer", "task", ["producer_id", "id", "assignee_id", "due_at", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_producer", "task")
    op.create_index("ix_task_producer", "task", ["producer_id", "id"], unique=False)
    op.drop_index("ix_task_assignee", "task")
    op.create_index("ix_task_assignee", "task", ["assignee_id"], unique=False)
    op.drop_index("ix_task_due", "task")
    op.drop_index("ix_task_created", "task")
