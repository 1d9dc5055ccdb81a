"""task_draft.task_id references task.id ON DELETE CASCADE: a task's drafts
go with its inbox row, however the task leaves the inbox (completed through
the task page or the API, cancelled by a timer or a supervisor). Drafts of
tasks already gone (completed through the API before this revision) are
deleted first.

Revision ID: 0012
Revises: 0011
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM task_draft WHERE task_id NOT IN (SELECT id FROM task)")
    with op.batch_alter_table("task_draft") as batch:
        batch.create_foreign_key(op.f("fk_task_draft_task_id_task"), "task", ["task_id"], ["id"],
                                 ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("task_draft") as batch:
        batch.drop_constraint(op.f("fk_task_draft_task_id_task"), type_="foreignkey")
