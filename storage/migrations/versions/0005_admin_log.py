"""admin log: who deployed or activated which diagram version, append-only
in the database like audit_event (0004).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MESSAGE = "admin_log is append-only"


def upgrade() -> None:
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("definition_name", sa.String(length=100), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user_account.id"],
                                name=op.f("fk_admin_log_actor_id_user_account")),
        sa.ForeignKeyConstraint(["definition_id"], ["process_definition.id"],
                                name=op.f("fk_admin_log_definition_id_process_definition")),
        sa.ForeignKeyConstraint(["province_id"], ["jurisdiction.id"],
                                name=op.f("fk_admin_log_province_id_jurisdiction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_log")),
    )
    op.create_index(op.f("ix_admin_log_at"), "admin_log", ["at"], unique=False)
    op.create_index(op.f("ix_admin_log_definition_id"), "admin_log", ["definition_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION admin_log_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER admin_log_append_only BEFORE UPDATE OR DELETE ON admin_log
            FOR EACH ROW EXECUTE FUNCTION admin_log_append_only()""")
        op.execute("CREATE TRIGGER admin_log_no_truncate BEFORE TRUNCATE ON admin_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION admin_log_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER admin_log_no_{action.lower()} BEFORE {action} ON admin_log
                BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER admin_log_no_truncate ON admin_log")
        op.execute("DROP TRIGGER admin_log_append_only ON admin_log")
        op.execute("DROP FUNCTION admin_log_append_only()")
    else:
        op.execute("DROP TRIGGER admin_log_no_update")
        op.execute("DROP TRIGGER admin_log_no_delete")
    op.drop_index(op.f("ix_admin_log_definition_id"), table_name="admin_log")
    op.drop_index(op.f("ix_admin_log_at"), table_name="admin_log")
    op.drop_table("admin_log")
