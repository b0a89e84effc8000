"""Seed scenarios: exact counts in a clone, valid references, identical rows on every build."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from factories import UserFactory
from factories.models import PostgresBase, User
from factories.scenarios import SCENARIOS
from netra_isolation import PostgreSQLTestIsolator, Settings, TemplateSpec, UnknownChoiceError
from netra_isolation.seed_data_manager import ScenarioRegistry, registry

ROOT = Path(__file__).resolve().parents[2]
TABLES = ["organizations", "users", "memberships", "threads", "thread_participants", "messages"]

# The original design's counts (the README's table), written out here rather than read from
# factories.scenarios, so a change to the seeding code's own table cannot move the target.
DESIGN = {
    "minimal": {"users": 3, "threads": 2, "messages": 5, "events": 0},
    "basic_workflow": {"users": 10, "threads": 15, "messages": 50, "events": 0},
    "multi_user": {"users": 25, "threads": 40, "messages": 150, "events": 0},
    "performance": {"users": 100, "threads": 200, "messages": 1000, "events": 500},
    "analytics": {"users": 50, "threads": 0, "messages": 0, "events": 2000},
}


@pytest.fixture(scope="module")
def isolator() -> Any:
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    yield isolator
    isolator.cleanup_all_sync()
    isolator.close()


def counts(session: Session) -> dict[str, int]:
    return {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


@pytest.mark.parametrize("name", sorted(DESIGN))
def test_scenario_counts_and_references_in_a_clone(isolator: Any, name: str) -> None:
    test_id = f"test_counts_{name}"
    isolator.create_isolated_database_sync(test_id, "thread_messages", name)
    design = DESIGN[name]
    expected = SCENARIOS[name]  # only for what the design leaves open: participants
    with isolator.session_sync(test_id) as session:
        got = counts(session)
        assert (got["users"], got["threads"], got["messages"]) == (
            design["users"],
            design["threads"],
            design["messages"],
        )
        assert got["memberships"] == design["users"]  # everyone belongs to an organization
        # every message's author takes part in its thread
        strays = session.execute(
            text(
                "SELECT count(*) FROM messages m LEFT JOIN thread_participants p "
                "ON p.thread_id = m.thread_id AND p.user_id = m.user_id WHERE p.user_id IS NULL"
            )
        ).scalar_one()
        assert strays == 0
        if design["threads"]:
            per_thread = session.execute(
                text(
                    "SELECT min(n) FROM (SELECT count(*) n FROM thread_participants "
                    "GROUP BY thread_id) x"
                )
            ).scalar_one()
            assert per_thread == min(expected["participants"], design["users"])
            if name == "multi_user":  # the design's threads of 4
                assert per_thread == 4
    isolator.cleanup_test_database_sync(test_id)


@pytest.mark.parametrize("name", sorted(DESIGN))
def test_scenario_events_in_a_clickhouse_clone(name: str) -> None:
    """The ClickHouse part of a scenario, counted in a real seeded clone: the design's events,
    all by the scenario's users (ids 1..users)."""
    from netra_isolation import ClickHouseTestIsolator

    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT))
    try:
        isolator.create_isolated_database_sync(f"test_events_{name}", "events", name)
        client = isolator.client(f"test_events_{name}")
        try:
            rows, low, high = client.execute(
                "SELECT count(), min(user_id), max(user_id) FROM events"
            )[0]
        finally:
            client.close()
        assert rows == DESIGN[name]["events"]
        if rows:
            assert low >= 1 and high <= DESIGN[name]["users"]
    finally:
        isolator.cleanup_all_sync()
        isolator.close()


def dump(url: str, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Seed `name` into the database at `url` and return every row of every table."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        PostgresBase.metadata.create_all(connection)
        with Session(bind=connection) as session:
            registry.seed_postgres(name, session)
        rows = {
            t: [tuple(r) for r in connection.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))]
            for t in TABLES
        }
    engine.dispose()
    return rows


@pytest.mark.parametrize("name", sorted(DESIGN))
def test_two_builds_give_identical_rows(isolator: Any, name: str) -> None:
    urls = []
    for i in range(2):
        test_id = f"test_identical_{name}_{i}"
        # an empty schema-less clone: the rows are built from scratch both times
        isolator.create_isolated_database_sync(test_id, "basic")
        urls.append(isolator.database_url(test_id, "psycopg"))
    UserFactory.build_batch(7)  # factory state touched in between must not matter
    first, second = dump(urls[0], name), dump(urls[1], name)
    assert first == second
    assert len(first["users"]) == DESIGN[name]["users"]
    assert len(first["messages"]) == DESIGN[name]["messages"]


def test_unknown_scenario_names_the_known_ones(isolator: Any) -> None:
    with pytest.raises(UnknownChoiceError) as info:
        isolator.create_isolated_database_sync("test_typo", "thread_messages", "minimul")
    for known in SCENARIOS:
        assert repr(known) in str(info.value)


def test_scenario_on_a_schema_without_users_says_which_schema(isolator: Any) -> None:
    from netra_isolation.errors import SeedError

    with pytest.raises(SeedError, match="user_management or thread_messages"):
        isolator.ensure_template(TemplateSpec("basic", "minimal"))


def test_factory_code_is_in_the_fingerprint(tmp_path: Path, throwaway_templates: Any) -> None:
    code = tmp_path / "my_factories.py"
    code.write_text(f"VERSION = 1  # {uuid4()}\n")
    scenarios = ScenarioRegistry()
    scenarios.depends_on_code(code)
    marker = f"custom {tmp_path.name}"

    @scenarios.scenario("custom", seed=7)
    def custom(session: Session) -> None:
        session.add(User(email=f"{marker}@example.com", full_name=marker))

    settings = Settings.load(root=ROOT)

    def ensure() -> tuple[Any, Any]:
        isolator = PostgreSQLTestIsolator(settings, scenarios=scenarios)
        ref = isolator.ensure_template(TemplateSpec("user_management", "custom"))
        isolator.close()
        return ref, isolator.metrics.counters

    first, _ = ensure()
    throwaway_templates(PostgreSQLTestIsolator, settings, first.name)
    again, counters = ensure()
    assert again.fingerprint == first.fingerprint
    assert counters["templates_built"] == 0
    code.write_text(f"VERSION = 2  # {uuid4()}\n")
    changed, counters = ensure()
    throwaway_templates(PostgreSQLTestIsolator, settings, changed.name)
    assert changed.fingerprint != first.fingerprint
    assert counters["templates_built"] == 1


APP_SESSIONS = """
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class AppSession(Session):
    \"\"\"The app's own session class (as SQLModel's): a method SQLAlchemy's has not.\"\"\"

    def exec(self, statement):
        return self.execute(statement)


AsyncSessionLocal = async_sessionmaker()
SessionLocal = scoped_session(sessionmaker(class_=AppSession))
# {unique}
"""


@pytest.mark.parametrize("named", ["SessionLocal", "AppSession"])
def test_a_scenario_gets_the_apps_session_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_templates: Any, named: str
) -> None:
    """The first sync session factory of the setting `sessions`, or a Session class it
    names, says the class: the app's own seeding code (`init_db(session)` calling
    `session.exec`) runs on it unchanged."""
    unique = uuid4().hex[:8]
    app = tmp_path / f"app_sessions_{unique}.py"
    app.write_text(APP_SESSIONS.format(unique=unique))
    monkeypatch.syspath_prepend(str(tmp_path))
    scenarios = ScenarioRegistry()
    scenarios.depends_on_code(app)  # a template of this run's own
    given: list[type] = []

    @scenarios.scenario("app_session", seed=3)
    def init_db(session: Any) -> None:
        given.append(type(session))
        session.exec(insert(User).values(email=f"{unique}@example.com", full_name="Admin"))

    settings = Settings.load(root=ROOT).with_overrides(
        sessions=(f"{app.stem}:AsyncSessionLocal", f"{app.stem}:{named}")
    )
    isolator = PostgreSQLTestIsolator(settings, scenarios=scenarios)
    try:
        ref = isolator.ensure_template(TemplateSpec("user_management", "app_session"))
        throwaway_templates(PostgreSQLTestIsolator, settings, ref.name)
        assert [cls.__name__ for cls in given] == ["AppSession"]
        isolator.create_isolated_database_sync("t_app_session", "user_management", "app_session")
        with isolator.session_sync("t_app_session") as session:
            assert session.scalars(select(User.email)).all() == [f"{unique}@example.com"]
    finally:
        isolator.cleanup_all_sync()
        isolator.close()


def test_template_is_seeded_once_not_per_test(isolator: Any) -> None:
    seeds = isolator.metrics.timings["seed"]
    isolator.create_isolated_database_sync("test_once_a", "thread_messages", "basic_workflow")
    after_first = len(seeds)
    isolator.create_isolated_database_sync("test_once_b", "thread_messages", "basic_workflow")
    isolator.create_isolated_database_sync("test_once_c", "thread_messages", "basic_workflow")
    assert len(seeds) == after_first  # later clones seed nothing
    with isolator.session_sync("test_once_c") as session:
        assert session.scalar(select(User.email).order_by(User.id).limit(1)) == "user0@example.com"


def test_clickhouse_rows_are_identical_on_every_build() -> None:
    first = registry.seed_clickhouse("analytics")
    UserFactory.build_batch(3)  # factory state touched in between must not matter
    second = registry.seed_clickhouse("analytics")
    assert first == second
    events = first["events"]
    assert len(events) == DESIGN["analytics"]["events"]
    assert {e["user_id"] for e in events} <= set(range(1, DESIGN["analytics"]["users"] + 1))
    assert len({e["event_id"] for e in events}) == 2000
