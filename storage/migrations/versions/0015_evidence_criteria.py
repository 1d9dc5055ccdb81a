"""Evidence tied to criteria (issue 15, item 8): each document names the
criteria of its product's set it supports (a JSON list of ids, default
empty), the cycle it was uploaded for (nullable: files uploaded before, or
outside a cycle) and until when it holds (nullable: a food-safety licence
or a lab test expires).

Revision ID: 0015
Revises: 0013 (re-pointed to 0014 when the councils' migration is merged)
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("criteria", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("valid_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("instance_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_document_instance", "process_instance", ["instance_id"], ["id"])
        batch.create_index("ix_document_instance_id", ["instance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.drop_index("ix_document_instance_id")
        batch.drop_constraint("fk_document_instance", type_="foreignkey")
        batch.drop_column("instance_id")
        batch.drop_column("valid_until")
        batch.drop_column("criteria")
