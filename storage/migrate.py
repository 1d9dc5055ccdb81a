"""Create or upgrade the schema with Alembic, from code."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(sql_engine: Engine) -> None:
    """Bring the database to the newest schema revision."""
    config = alembic_config(sql_engine.url.render_as_string(hide_password=False))
    with sql_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
