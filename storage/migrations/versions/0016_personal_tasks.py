"""A task the diagram gives to one person (its `assignee` property, e.g. a
council member's own sheet) is marked `personal`: nobody else may claim,
release or be handed it, and colleagues' inboxes leave it out. Kept on the
row, so neither needs the diagram read back.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("personal", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("personal")
