"""`alembic -n postgres upgrade heads` from the repository root, against any URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from factories.models import PostgresBase
from netra_isolation import PostgreSQLTestIsolator, Settings

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


def test_clickhouse_cli_upgrade_heads_over_http() -> None:
    from netra_isolation import ClickHouseTestIsolator

    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT))
    server = isolator.server
    name = f"{isolator.settings.prefix}_cli_{isolator.owner.run}"
    server.query(f"CREATE DATABASE {name}")
    url = (
        f"clickhouse+http://{server.user}:{server.password}@{server.host}:{server.http_port}/{name}"
    )
    try:
        alembic = Path(sys.executable).with_name("alembic")
        command = [str(alembic), "-n", "clickhouse", "-x", f"url={url}", "upgrade", "heads"]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        tables = set(
            server.query(f"SELECT name FROM system.tables WHERE database = '{name}'").split()
        )
        assert tables == {
            "alembic_version",
            "test_records",
            "test_log",
            "events",
            "metrics",
            "metrics_hourly",
        }
        versions = f"SELECT version_num FROM {name}.alembic_version"
        heads = {"ch_basic_0001", "ch_events_0001", "ch_metrics_0001"}
        assert set(server.query(versions).split()) == heads
        # A merge must keep every branch head (clickhouse-sqlalchemy#235), so running the same
        # command again is a no-op instead of re-running migrations.
        server.query(f"OPTIMIZE TABLE {name}.alembic_version FINAL")
        assert set(server.query(versions).split()) == heads
        again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "Running upgrade" not in again.stderr
    finally:
        server.query(f"DROP DATABASE IF EXISTS {name}")
        isolator.close()
