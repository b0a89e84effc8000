"""PostgreSQLTestIsolator against the real throwaway server the suite starts itself."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from netra_isolation import (
    PostgreSQLTestIsolator,
    Settings,
    TemplateSpec,
    UnknownSchemaTypeError,
)
from netra_isolation.errors import MigrationError
from netra_isolation.naming import MAX_IDENTIFIER

# also on the machine's PostgreSQL 15 (scripts/test.sh): clones, template builds, rollbacks
pytestmark = pytest.mark.both_servers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def isolator() -> PostgreSQLTestIsolator:
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    yield isolator
    isolator.cleanup_all_sync()
    isolator.close()


def test_clone_is_migrated_and_carries_the_test_id(isolator: PostgreSQLTestIsolator) -> None:
    db = isolator.create_isolated_database_sync("test_clone", "user_management")
    assert "test_clone" in db.name
    with isolator.session_sync("test_clone") as session:
        tables = set(
            session.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    assert {"users", "organizations", "memberships", "api_keys"} <= tables
    assert "threads" not in tables


def test_owner_is_recorded_and_listed(isolator: PostgreSQLTestIsolator) -> None:
    db = isolator.create_isolated_database_sync("test_owner", nodeid="tests/x.py::test_owner")
    owned = {d.name: d for d in isolator.owned(isolator.owner.run)}
    assert owned[db.name].owner.test == "tests/x.py::test_owner"
    isolator.cleanup_test_database_sync("test_owner")
    assert db.name not in {d.name for d in isolator.owned(isolator.owner.run)}


def test_drop_terminates_leftover_connections(isolator: PostgreSQLTestIsolator) -> None:
    isolator.create_isolated_database_sync("test_busy")
    name = isolator.database("test_busy").name
    leftover = isolator.server.connect(name)
    isolator.cleanup_test_database_sync("test_busy")
    assert leftover.closed or leftover.broken or _is_dead(leftover)
    rows = (
        isolator.server.connect()
        .execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        .fetchall()
    )
    assert rows == []


def _is_dead(conn) -> bool:  # type: ignore[no-untyped-def]
    try:
        conn.execute("SELECT 1")
    except Exception:
        return True
    return False


async def test_commit_inside_rollback_context_is_gone_afterwards(
    isolator: PostgreSQLTestIsolator,
) -> None:
    await isolator.create_isolated_database("test_rollback")
    async with isolator.rollback_test_context("test_rollback") as session:
        await session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('a@example.com', 'A')")
        )
        await session.commit()
        await session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('b@example.com', 'B')")
        )
        await session.commit()
        count = (await session.execute(text("SELECT count(*) FROM test_users"))).scalar()
        assert count == 2
    async with isolator.session("test_rollback") as session:
        count = (await session.execute(text("SELECT count(*) FROM test_users"))).scalar()
    assert count == 0


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_a_rollback_context_carries_the_tests_tag_with_each_async_driver(
    driver: str,
) -> None:
    """The tag is set on the driver's own cursor, in its own placeholder style: asyncpg's is
    `$1` (the tag in psycopg's style failed every rollback context on asyncpg)."""
    settings = dataclasses.replace(Settings.load(root=ROOT), postgres_driver=driver)
    isolator = PostgreSQLTestIsolator(settings)
    try:
        await isolator.create_isolated_database("test_tagged")
        for _ in range(2):  # asyncpg's connection is the context's own; psycopg's is kept
            async with isolator.rollback_test_context("test_tagged") as session:
                tag = (await session.execute(text("SHOW application_name"))).scalar()
                assert tag == isolator.application_name("test_tagged")
                await session.execute(
                    text("INSERT INTO test_users (email, full_name) VALUES ('t@x.io', 'T')")
                )
                await session.commit()
    finally:
        isolator.cleanup_all_sync()
        isolator.close()


def test_sync_rollback_context_too(isolator: PostgreSQLTestIsolator) -> None:
    isolator.create_isolated_database_sync("test_sync_rollback")
    with isolator.rollback_test_context_sync("test_sync_rollback") as session:
        session.execute(text("INSERT INTO test_users (email, full_name) VALUES ('c@x.io', 'C')"))
        session.commit()
    with isolator.session_sync("test_sync_rollback") as session:
        assert session.execute(text("SELECT count(*) FROM test_users")).scalar() == 0


def test_second_start_with_unchanged_migrations_builds_nothing() -> None:
    first = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    first.ensure_template(TemplateSpec("thread_messages"))
    first.close()
    second = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    ref = second.ensure_template(TemplateSpec("thread_messages"))
    second.close()
    assert ref.built is False
    assert second.metrics.counters["templates_built"] == 0
    assert second.metrics.counters["templates_reused"] == 1


def _project_copy(tmp_path: Path, salt: str = "") -> Settings:
    """The project's migrations in tmp_path; a salt gives them a template of their own."""
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    if salt:
        migration = next((tmp_path / "migrations/postgres/versions").glob("*basic*.py"))
        migration.write_text(migration.read_text() + f"\n# {salt}\n")
    base = Settings.load(root=ROOT)
    return base.with_overrides(alembic_ini=tmp_path / "alembic.ini")


def test_changed_migration_builds_a_new_template(tmp_path: Path, throwaway_templates: Any) -> None:
    settings = _project_copy(tmp_path)
    before = PostgreSQLTestIsolator(settings)
    old = before.ensure_template(TemplateSpec("basic"))
    before.close()
    migration = next((tmp_path / "migrations/postgres/versions").glob("*basic*.py"))
    # unique per run: an earlier run's template for the same change would be reused, rightly
    migration.write_text(migration.read_text() + f"\n# a change that must rebuild: {uuid4()}\n")
    after = PostgreSQLTestIsolator(settings)
    new = after.ensure_template(TemplateSpec("basic"))
    after.close()
    throwaway_templates(PostgreSQLTestIsolator, settings, new.name)  # `old` is the project's
    assert new.fingerprint != old.fingerprint
    assert new.name != old.name
    assert after.metrics.counters["templates_built"] == 1


def test_unsealed_template_is_dropped_and_rebuilt(tmp_path: Path, throwaway_templates: Any) -> None:
    isolator = PostgreSQLTestIsolator(_project_copy(tmp_path, salt=f"unsealed {tmp_path}"))
    ref = isolator.ensure_template(TemplateSpec("basic"))
    throwaway_templates(PostgreSQLTestIsolator, isolator.settings, ref.name)
    isolator.close()
    admin = isolator.server.connect()
    admin.execute(f'ALTER DATABASE "{ref.name}" WITH IS_TEMPLATE false ALLOW_CONNECTIONS true')
    admin.close()
    fresh = PostgreSQLTestIsolator(isolator.settings)
    rebuilt = fresh.ensure_template(TemplateSpec("basic"))
    assert rebuilt.built is True
    assert rebuilt.name == ref.name
    sealed = (
        fresh.server.connect()
        .execute(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s", (ref.name,)
        )
        .fetchone()
    )
    fresh.close()
    assert sealed == (True, False)


def test_broken_migration_fails_clearly_and_leaves_nothing(tmp_path: Path) -> None:
    settings = _project_copy(tmp_path)
    migration = next((tmp_path / "migrations/postgres/versions").glob("*basic*.py"))
    migration.write_text(
        migration.read_text().replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n    op.execute('SELEC broken')\n",
            1,
        )
    )
    isolator = PostgreSQLTestIsolator(settings)
    with pytest.raises(MigrationError, match="basic@head failed") as info:
        isolator.ensure_template(TemplateSpec("basic"))
    # where: the revision and its line, not only the folder
    assert f"fix the migration {migration.resolve()} (line " in str(info.value)
    leftovers = (
        isolator.server.connect()
        .execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"%{isolator.fingerprint(TemplateSpec('basic'))[:12]}%",),
        )
        .fetchall()
    )
    isolator.close()
    assert leftovers == []


def test_a_broken_env_py_is_named_not_the_migrations(tmp_path: Path) -> None:
    settings = _project_copy(tmp_path)
    env_py = tmp_path / "migrations/postgres/env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "def _run(connection: Connection) -> None:\n",
            "def _run(connection: Connection) -> None:\n    raise RuntimeError('env.py is off')\n",
            1,
        )
    )
    isolator = PostgreSQLTestIsolator(settings)
    try:
        with pytest.raises(MigrationError, match=r"RuntimeError: env\.py is off") as info:
            isolator.ensure_template(TemplateSpec("basic"))
    finally:
        isolator.close()
    line = env_py.read_text().splitlines().index("    raise RuntimeError('env.py is off')") + 1
    assert f"fix {env_py.resolve()} (line {line}), which runs the migrations," in str(info.value)


def test_unknown_schema_type_names_the_valid_ones(isolator: PostgreSQLTestIsolator) -> None:
    with pytest.raises(UnknownSchemaTypeError) as info:
        isolator.create_isolated_database_sync("test_typo", "user_managment")
    message = str(info.value)
    for valid in ("basic", "user_management", "thread_messages"):
        assert repr(valid) in message


def test_300_character_test_id_gets_a_valid_unique_name(isolator: PostgreSQLTestIsolator) -> None:
    long_a = "test_param_" + "a" * 300 + "_1"
    long_b = "test_param_" + "a" * 300 + "_2"
    a = isolator.create_isolated_database_sync(long_a, nodeid=long_a)
    b = isolator.create_isolated_database_sync(long_b, nodeid=long_b)
    assert a.name != b.name
    for name in (a.name, b.name):
        assert len(name.encode()) <= MAX_IDENTIFIER
        with isolator.session_sync(long_a if name == a.name else long_b) as session:
            assert session.execute(text("SELECT current_database()")).scalar() == name


def test_connection_info_masks_the_password(isolator: PostgreSQLTestIsolator) -> None:
    isolator.create_isolated_database_sync("test_info")
    info = isolator.get_connection_info("test_info")
    assert info["password"] == "***"
    assert isolator.server.password not in info["url"]
    assert info["database"] == isolator.database("test_info").name


def test_copies_are_made_ahead_renamed_for_tests_and_dropped_at_the_end() -> None:
    import time

    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    isolator.create_isolated_database_sync("test_first")

    def ready() -> list[str]:
        rows = isolator.server.connect().execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"%\\_rdy\\_{isolator.owner.run}\\_%",),
        )
        return [r[0] for r in rows.fetchall()]

    deadline = time.monotonic() + 30
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = ready()
    assert len(waiting) == 1
    second = isolator.create_isolated_database_sync("test_second")
    assert waiting[0] not in ready()  # renamed into the second test's database
    with isolator.session_sync("test_second") as session:
        assert session.execute(text("SELECT current_database()")).scalar() == second.name
        assert session.execute(text("SELECT count(*) FROM test_users")).scalar() == 0
    isolator.cleanup_all_sync()
    isolator.close()  # drains: no copy is left behind
    assert ready() == []


def test_a_script_leaves_no_database_behind(tmp_path: Path) -> None:
    """Outside pytest: the context managers' default manager drops everything at exit."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio, os\n"
        "from netra_isolation import with_isolated_postgres\n"
        "async def main():\n"
        "    async with with_isolated_postgres('script_test') as (session, config):\n"
        "        print(config.manager.owner.run)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run = done.stdout.strip()
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    rows = isolator.server.connect().execute(
        "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE %s",
        (f'%"run": "{run}"%',),
    )
    assert rows.fetchall() == []
    isolator.close()
