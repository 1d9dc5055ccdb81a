"""Councils as data (issue 15): councils, their members (history kept),
their sessions and the products on each session's agenda; and the admin
log generalised to say what an entry is about (`subject`, `subject_id`),
so a council's roster changes are logged beside the diagram changes.

admin_log stays append-only. On SQLite, making its definition columns
nullable rebuilds the table (batch mode), which drops its triggers: they are
dropped first and created again after, exactly as 0005 made them. PostgreSQL
alters the columns in place and keeps its trigger.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

MESSAGE = "admin_log is append-only"  # as 0005


def _sqlite_triggers(create: bool) -> None:
    for action in ("UPDATE", "DELETE"):
        if create:
            op.execute(f"""
                CREATE TRIGGER admin_log_no_{action.lower()} BEFORE {action} ON admin_log
                BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""")
        else:
            op.execute(f"DROP TRIGGER admin_log_no_{action.lower()}")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "council",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("quorum_fraction", sa.Float(), nullable=False),
        sa.Column("chair_required", sa.Boolean(), nullable=False),
        sa.Column("spread_limit", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["jurisdiction.id"], name=op.f("fk_council_area_id_jurisdiction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council")),
    )
    op.create_index(op.f("ix_council_area_id"), "council", ["area_id"], unique=False)
    op.create_index("uq_council_active_area", "council", ["level", "area_id"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))

    op.create_table(
        "council_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("council_role", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["council_id"], ["council.id"], name=op.f("fk_council_member_council_id_council")),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_council_member_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_member")),
    )
    op.create_index("uq_council_member_active_user", "council_member", ["council_id", "user_id"], unique=True,
                    sqlite_where=sa.text("removed_at IS NULL"), postgresql_where=sa.text("removed_at IS NULL"))
    single = "removed_at IS NULL AND council_role IN ('chair', 'secretary')"
    op.create_index("uq_council_member_single_role", "council_member", ["council_id", "council_role"],
                    unique=True, sqlite_where=sa.text(single), postgresql_where=sa.text(single))
    op.create_index("ix_council_member_user", "council_member", ["user_id"], unique=False)

    op.create_table(
        "council_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("council_id", sa.Integer(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("opened_by", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("present", sa.JSON(), nullable=False),
        sa.Column("roster", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["council_id"], ["council.id"], name=op.f("fk_council_session_council_id_council")),
        sa.ForeignKeyConstraint(["opened_by"], ["user_account.id"],
                                name=op.f("fk_council_session_opened_by_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_session")),
    )
    op.create_index(op.f("ix_council_session_council_id"), "council_session", ["council_id"], unique=False)

    op.create_table(
        "council_agenda",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("element_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["council_session.id"],
                                name=op.f("fk_council_agenda_session_id_council_session")),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_council_agenda_instance_id_process_instance")),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], name=op.f("fk_council_agenda_product_id_product")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_agenda")),
        sa.UniqueConstraint("session_id", "instance_id", name=op.f("uq_council_agenda_session_id")),
    )
    op.create_index(op.f("ix_council_agenda_instance_id"), "council_agenda", ["instance_id"], unique=False)

    # The admin log: about a diagram (as before) or about another subject.
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("admin_log") as batch:
        batch.alter_column("definition_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("definition_name", existing_type=sa.String(length=100), nullable=True)
        batch.alter_column("definition_version", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
    if sqlite:
        _sqlite_triggers(create=True)
    op.create_index("ix_admin_log_subject", "admin_log", ["subject", "subject_id"], unique=False)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_admin_log_subject", table_name="admin_log")
    # Entries about other subjects have no diagram: the old schema cannot hold
    # them, and the log is append-only, so a downgrade with any is refused.
    if op.get_bind().execute(sa.text("SELECT COUNT(*) FROM admin_log WHERE subject IS NOT NULL")).scalar():
        raise RuntimeError("admin_log holds council entries: 0014 cannot be downgraded without losing them")
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("admin_log") as batch:
        batch.drop_column("subject_id")
        batch.drop_column("subject")
        batch.alter_column("definition_version", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("definition_name", existing_type=sa.String(length=100), nullable=False)
        batch.alter_column("definition_id", existing_type=sa.Integer(), nullable=False)
    if sqlite:
        _sqlite_triggers(create=True)
    op.drop_index(op.f("ix_council_agenda_instance_id"), table_name="council_agenda")
    op.drop_table("council_agenda")
    op.drop_index(op.f("ix_council_session_council_id"), table_name="council_session")
    op.drop_table("council_session")
    op.drop_index("ix_council_member_user", table_name="council_member")
    op.drop_index("uq_council_member_single_role", table_name="council_member")
    op.drop_index("uq_council_member_active_user", table_name="council_member")
    op.drop_table("council_member")
    op.drop_index("uq_council_active_area", table_name="council")
    op.drop_index(op.f("ix_council_area_id"), table_name="council")
    op.drop_table("council")
