"""user_account.session_epoch: the generation of a user's web sessions
(web/auth.py). A session or remember cookie names the user and the epoch it
was signed in with; signing out or a deactivation adds one, so every copy of
an earlier cookie stops working. Existing rows start at 0; sessions signed
in before this revision carry no epoch and count as signed out.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("session_epoch")
