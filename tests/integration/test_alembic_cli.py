"""`alembic -n postgres upgrade heads` from the repository root, against any URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from netra_isolation import PostgreSQLTestIsolator, Settings
from netra_isolation.models import PostgresBase

ROOT = Path(__file__).resolve().parents[2]


def test_cli_upgrade_heads_then_models_match_the_database() -> None:
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    name = f"{isolator.settings.prefix}_alembic_cli_{isolator.owner.run}"
    admin = isolator.server.connect()
    admin.execute(f'CREATE DATABASE "{name}"')
    url = isolator.server.url(name).render_as_string(hide_password=False)
    try:
        alembic = Path(sys.executable).with_name("alembic")
        result = subprocess.run(
            [str(alembic), "-n", "postgres", "-x", f"url={url}", "upgrade", "heads"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {
                *PostgresBase.metadata.tables,
                "alembic_version",
            }
            assert compare_metadata(MigrationContext.configure(conn), PostgresBase.metadata) == []
        engine.dispose()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        isolator.close()


def test_cli_without_a_url_says_how_to_give_one() -> None:
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "-n", "postgres", "upgrade", "heads"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "-x url=postgresql+psycopg://" in result.stderr + result.stdout
