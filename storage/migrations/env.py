"""Alembic environment. Configured from code (storage.migrate), so there is
no alembic.ini to keep in step: the connection comes in config attributes."""
from alembic import context
from sqlalchemy import pool

from storage.db import make_sql_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    sql_engine = make_sql_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with sql_engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
