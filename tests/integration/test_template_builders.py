"""Templates built another way than by Alembic: a MetaData, SQL files, a setup callable; on
the real servers, each fingerprinted by what it is built from."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, text
from sqlalchemy.pool import NullPool

from netra_isolation import (
    ClickHouseTestIsolator,
    ConfigurationError,
    PostgreSQLTestIsolator,
    Settings,
)
from netra_isolation.templates import (
    MetadataBuilder,
    SetupBuilder,
    SqlFilesBuilder,
    builder_from_settings,
)

ROOT = Path(__file__).resolve().parents[2]
MakeIsolator = Callable[..., Any]


@pytest.fixture
def isolators() -> Iterator[MakeIsolator]:
    """`isolators(kind, builder)`: an isolator with a prefix of its own; its databases and
    templates are dropped afterwards."""
    made: list[Any] = []

    def make(kind: type, builder: Any, **settings: Any) -> Any:
        base = Settings.load(root=ROOT).with_overrides(prefix=f"nibld{uuid.uuid4().hex[:6]}")
        isolator = kind(base.with_overrides(**settings) if settings else base, builder=builder)
        made.append(isolator)
        return isolator

    yield make
    for isolator in made:
        isolator.cleanup_all_sync()
        for name in isolator.templates():
            isolator.drop_template(name)
        isolator.close()


def pg_tables(isolator: PostgreSQLTestIsolator, test_id: str) -> set[str]:
    with isolator.session_sync(test_id) as session:
        rows = session.execute(
            text(
                "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
                "NOT IN ('pg_catalog', 'information_schema')"
            )
        ).scalars()
        return set(rows)


def shop_metadata(extra_column: bool = False) -> MetaData:
    metadata = MetaData()
    columns = [Column("id", Integer, primary_key=True), Column("name", String(50))]
    if extra_column:
        columns.append(Column("price", Integer))
    Table("products", metadata, *columns)
    Table("ledger", metadata, Column("id", Integer, primary_key=True), schema="audit")
    return metadata


@pytest.mark.both_servers
def test_metadata_builds_tables_and_their_schemas(isolators: MakeIsolator) -> None:
    isolator = isolators(PostgreSQLTestIsolator, MetadataBuilder(shop_metadata()))
    isolator.create_isolated_database_sync("t_meta")
    assert pg_tables(isolator, "t_meta") == {"public.products", "audit.ledger"}


def test_metadata_fingerprint_follows_the_models() -> None:
    one, same = MetadataBuilder(shop_metadata()), MetadataBuilder(shop_metadata())
    changed = MetadataBuilder(shop_metadata(extra_column=True))
    versioned = MetadataBuilder(shop_metadata(), version="2")
    assert one.fingerprint() == same.fingerprint()
    assert len({one.fingerprint(), changed.fingerprint(), versioned.fingerprint()}) == 3


@pytest.mark.both_servers
def test_sql_files_run_in_order_and_their_content_is_the_fingerprint(
    tmp_path: Path, isolators: MakeIsolator
) -> None:
    first, second = tmp_path / "01_schema.sql", tmp_path / "02_data.sql"
    first.write_text("CREATE TABLE colors (name text PRIMARY KEY);\nCREATE SCHEMA ref;\n")
    second.write_text("INSERT INTO colors VALUES ('red'), ('blue');\n")
    builder = SqlFilesBuilder([first, second])
    isolator = isolators(PostgreSQLTestIsolator, builder)
    isolator.create_isolated_database_sync("t_sql")
    with isolator.session_sync("t_sql") as session:
        colors = session.execute(text("SELECT name FROM colors ORDER BY 1")).scalars().all()
    assert colors == ["blue", "red"]
    before = builder.fingerprint()
    second.write_text("INSERT INTO colors VALUES ('green');\n")
    assert builder.fingerprint() != before
    assert SqlFilesBuilder([second, first]).fingerprint() != builder.fingerprint()


def test_a_setup_callable_may_commit_on_its_own_engine_and_leave_it_open(
    isolators: MakeIsolator,
) -> None:
    """As an application's own setup does: its engine's pooled connection stays open, and the
    tool ends it before sealing (else the template could not be renamed or cloned)."""
    engines: list[Any] = []

    def setup(connection: Any, url: str) -> None:
        connection.execute(text("CREATE TABLE tenants (name text)"))
        engine = create_engine(url)  # pooled: its connection stays open after the block
        engines.append(engine)
        with engine.begin() as own:
            own.execute(text("CREATE SCHEMA tenant_a"))
            own.execute(text("CREATE TABLE tenant_a.notes (body text)"))

    isolator = isolators(PostgreSQLTestIsolator, SetupBuilder(setup))
    isolator.create_isolated_database_sync("t_setup")
    assert pg_tables(isolator, "t_setup") == {"public.tenants", "tenant_a.notes"}
    engines[0].dispose()


APP_ENGINE = """
from sqlalchemy import create_engine

engine = create_engine("postgresql+psycopg2://app:secret@127.0.0.1:9/app_db")
"""


@pytest.mark.parametrize("named_by", ["postgres_driver", "engines"])
def test_a_setup_callable_gets_a_url_of_the_apps_driver(
    named_by: str, isolators: MakeIsolator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app runs on psycopg2 (`postgres_driver`, or its engine's driver): so does the URL
    its setup gets, and an engine of the setup's own on it works."""
    module = f"app_engine_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(APP_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    drivers = []

    def setup(connection: Any, url: str) -> None:
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as own:
                drivers.append(own.dialect.driver)
                own.execute(text("CREATE TABLE made_by_the_app (id int)"))
        finally:
            engine.dispose()

    setting = {"postgres_driver": "psycopg2"} if named_by == "postgres_driver" else {}
    setting |= {"engines": (f"{module}:engine",)} if named_by == "engines" else {}
    isolator = isolators(PostgreSQLTestIsolator, SetupBuilder(setup), **setting)
    isolator.create_isolated_database_sync("t_driver")
    assert drivers == ["psycopg2"]
    assert pg_tables(isolator, "t_driver") == {"public.made_by_the_app"}


def test_a_setup_function_that_takes_an_engine_gets_one_on_the_template(
    isolators: MakeIsolator,
) -> None:
    """The app's own `init_database(engine)`, named as it is: an Engine of the app's driver."""
    drivers = []

    def init_database(engine: Any) -> None:
        drivers.append(engine.dialect.driver)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE made_by_init_database (id int)"))

    isolator = isolators(
        PostgreSQLTestIsolator, SetupBuilder(init_database), postgres_driver="psycopg2"
    )
    isolator.create_isolated_database_sync("t_engine")
    assert drivers == ["psycopg2"]
    assert pg_tables(isolator, "t_engine") == {"public.made_by_init_database"}


@pytest.mark.parametrize("each_process", [False, True])
def test_a_process_that_reuses_the_template_runs_the_setup_when_asked(
    isolators: MakeIsolator, each_process: bool
) -> None:
    """postgres_setup_each_process: the setup function's work in the process (here, a list
    it appends to) happens in a process that reused the template too, on a database of its
    own that is dropped after; the template is not built again."""
    ran: list[str] = []

    def setup(connection: Any) -> None:
        ran.append(connection.scalar(text("SELECT current_database()")))
        connection.execute(text("CREATE TABLE made (id int)"))

    builder = SetupBuilder(setup, version=uuid.uuid4().hex)
    builds = isolators(PostgreSQLTestIsolator, builder)
    builds.create_isolated_database_sync("t_first")  # the process that builds it
    prefix = builds.settings.prefix
    reuses = PostgreSQLTestIsolator(
        builds.settings.with_overrides(postgres_setup_each_process=each_process), builder=builder
    )
    try:
        reuses.create_isolated_database_sync("t_second")
        reuses.create_isolated_database_sync("t_third")  # once a process, not once a test
        assert pg_tables(reuses, "t_second") == {"public.made"}
    finally:
        reuses.cleanup_all_sync()
        reuses.close()
    assert reuses.metrics.counters.get("templates_built", 0) == 0
    assert len(ran) == (2 if each_process else 1)
    if each_process:  # a database of its own, gone now
        assert ran[1].startswith(f"{prefix}_new_") and ran[1] != ran[0]
        with builds.server.connect() as conn:
            [(left,)] = conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname = %s", (ran[1],)
            )
        assert left == 0


def test_setup_fingerprint_is_its_module_source_and_version(tmp_path: Path) -> None:
    module = tmp_path / f"app_setup_{uuid.uuid4().hex[:6]}.py"
    module.write_text("def setup(connection):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        namespace = __import__(module.stem)
        before = SetupBuilder(namespace.setup).fingerprint()
        assert SetupBuilder(namespace.setup, version="v2").fingerprint() != before
        module.write_text("def setup(connection):\n    pass  # changed\n")
        assert SetupBuilder(namespace.setup).fingerprint() != before
    finally:
        sys.path.remove(str(tmp_path))


def test_clickhouse_sql_files(tmp_path: Path, isolators: MakeIsolator) -> None:
    schema = tmp_path / "clickhouse.sql"
    schema.write_text(
        textwrap.dedent(
            """
            CREATE TABLE hits (id UInt64, url String) ENGINE = MergeTree ORDER BY id;
            CREATE TABLE hits_log (id UInt64) ENGINE = Log;
            """
        )
    )
    isolator = isolators(ClickHouseTestIsolator, SqlFilesBuilder([schema]))
    isolator.create_isolated_database_sync("t_ch_sql")
    client = isolator.client("t_ch_sql")
    try:
        client.insert("hits", [{"id": 1, "url": "/a"}])
        assert client.execute("SELECT url FROM hits") == [("/a",)]
        assert client.count("hits_log") == 0
    finally:
        client.close()


def test_settings_name_the_builder(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    settings = Settings.load(
        {"postgres_sql": ["schema.sql"], "template_version": "7"}, environ={}, root=tmp_path
    )
    builder = builder_from_settings(settings, "postgres")
    assert isinstance(builder, SqlFilesBuilder)
    assert builder.paths == [tmp_path / "schema.sql"] and builder.version == "7"
    both = settings.with_overrides(postgres_setup="os:getcwd")
    with pytest.raises(ConfigurationError, match="postgres_sql and postgres_setup"):
        builder_from_settings(both, "postgres")
    assert builder_from_settings(Settings.load(environ={}, root=tmp_path), "postgres") is None


def test_a_setting_that_does_not_import_says_so(tmp_path: Path) -> None:
    settings = Settings.load({"postgres_setup": "no_such_module:setup"}, environ={}, root=tmp_path)
    with pytest.raises(
        ConfigurationError, match="'no_such_module:setup' of the setting 'postgres_setup'"
    ):
        builder_from_settings(settings, "postgres")


def test_an_engine_of_its_own_is_not_left_open_on_the_clone(isolators: MakeIsolator) -> None:
    """The copy a test gets has no connection but the test's."""

    def setup(connection: Any, url: str) -> None:
        connection.execute(text("CREATE TABLE t (id int)"))
        create_engine(url, poolclass=NullPool).connect()  # leaked on purpose

    isolator = isolators(PostgreSQLTestIsolator, SetupBuilder(setup))
    db = isolator.create_isolated_database_sync("t_leak")
    with isolator.session_sync("t_leak") as session:
        others = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                "AND pid <> pg_backend_pid()"
            ),
            {"d": db.name},
        ).scalar_one()
    assert others == 0


def test_clickhouse_setup_callable(isolators: MakeIsolator) -> None:
    def setup(connection: Any) -> None:
        connection.exec_driver_sql("CREATE TABLE visits (id UInt64) ENGINE = MergeTree ORDER BY id")
        connection.exec_driver_sql("INSERT INTO visits VALUES (1), (2)")

    isolator = isolators(ClickHouseTestIsolator, SetupBuilder(setup))
    isolator.create_isolated_database_sync("t_ch_setup")
    client = isolator.client("t_ch_setup")
    try:
        assert client.count("visits") == 2
    finally:
        client.close()


def test_the_test_id_api_and_context_managers_default_to_the_configured_schema(
    isolators: MakeIsolator,
) -> None:
    from netra_isolation import TestDatabaseManager, with_isolated_postgres_sync

    isolator = isolators(PostgreSQLTestIsolator, None, schema="user_management")
    isolator.create_isolated_database_sync("t_configured")
    assert "public.organizations" in pg_tables(isolator, "t_configured")
    assert "public.test_users" not in pg_tables(isolator, "t_configured")
    manager = TestDatabaseManager(isolator.settings)
    try:
        with with_isolated_postgres_sync("t_cm", manager=manager) as (session, config):
            assert config.databases["postgres"].template.spec.schema_type == "user_management"
    finally:
        manager.finish()
