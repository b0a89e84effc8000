"""The fixtures: `isolated_postgres` and its kin, and fixture factories for further databases.

Every fixture reaches the run's manager through the `netra_manager` fixture (the plugin's),
never through a module global, and is one of the context managers of `contexts` around the
test: the `_sync` fixtures enter it with `with`, the others with `async with`.

Fixture factories give a fixture of your own for each further database your tests need (an
audit database beside the main one, a second ClickHouse), each with its own template builder
and scenario, at either level, as pytest-postgresql's `factories.postgresql(...)` does:

    audit_db = postgres_fixture(MetadataBuilder(audit.Base.metadata))

    def test_audit(isolated_postgres_sync, audit_db):
        session, config = audit_db

Factories keep writing to the main fixture's session; the further database's session is
yours to use.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from netra_isolation.contexts import (
    IsolatedClickHouse,
    IsolatedDatabase,
    IsolatedPostgres,
    full_stack,
    full_stack_schemas,
)
from netra_isolation.errors import ConfigurationError, ValidationFailedError
from netra_isolation.handle import IsolatedTestConfig
from netra_isolation.naming import test_id_from_nodeid
from netra_isolation.settings import LEVELS

if TYPE_CHECKING:
    from netra_isolation.templates import TemplateBuilder
    from netra_isolation.test_database_manager import TestDatabaseManager

CONFIGS = pytest.StashKey[list[IsolatedTestConfig]]()  # a test's handles, for the plugin
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # a test's reports, by phase


def test_failed(item: pytest.Item) -> bool:
    """Whether a phase of the test has failed so far (the plugin records the reports)."""
    reports = item.stash.get(REPORTS, {})
    return any(report.failed for report in reports.values())


test_failed.__test__ = False  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IsolationRequest:
    level: str = "database"
    schema: str | None = None
    scenario: str | None = None
    clickhouse_schema: str | None = None
    scale: int | None = None
    validate: bool = False


def isolation(
    level: str = "database",
    schema: str | None = None,
    scenario: str | None = None,
    clickhouse_schema: str | None = None,
    scale: int | None = None,
    validate: bool = False,
) -> IsolationRequest:
    """The signature of `@pytest.mark.isolation(...)`: a typo fails with Python's own message."""
    if level not in LEVELS:
        raise ConfigurationError(f"level={level!r} is not one of {', '.join(LEVELS)}")
    if scale is not None and (not isinstance(scale, int) or scale < 1):
        raise ConfigurationError(f"scale={scale!r} is not a whole number of at least 1")
    return IsolationRequest(level, schema, scenario, clickhouse_schema, scale, bool(validate))


def _request_isolation(
    request: pytest.FixtureRequest, manager: TestDatabaseManager
) -> IsolationRequest:
    __tracebackhide__ = True
    settings = manager.settings
    # schemas left unnamed are the scenario's own, else the configured ones (at setup)
    defaults: dict[str, Any] = {
        "level": settings.level,
        "scenario": settings.scenario,
        "validate": settings.validate,
    }
    marker = request.node.get_closest_marker("isolation")
    if marker is None:
        return isolation(**defaults)
    try:
        return isolation(*marker.args, **{**defaults, **marker.kwargs})
    except (TypeError, ConfigurationError) as exc:
        why = str(exc)
    # outside the `except`: the report shows the message, not the error it replaces
    pytest.fail(
        f"bad @pytest.mark.isolation on {request.node.nodeid}: {why}. "
        "Use @pytest.mark.isolation(level='database'|'transaction', schema=..., scenario=...)",
        pytrace=False,
    )


def _test_config(
    request: pytest.FixtureRequest, manager: TestDatabaseManager, level: str
) -> IsolatedTestConfig:
    config = IsolatedTestConfig(
        test_id_from_nodeid(request.node.nodeid),
        manager=manager,
        nodeid=request.node.nodeid,
        level=level,
    )
    request.node.stash.setdefault(CONFIGS, []).append(config)
    return config


def _keep_if_failed(request: pytest.FixtureRequest, config: IsolatedTestConfig) -> None:
    config.keep = config.manager.settings.keep_failed and test_failed(request.node)


def _around_test(
    kind: type[IsolatedDatabase[Any, Any]],
    request: pytest.FixtureRequest,
    manager: TestDatabaseManager,
    wanted: IsolationRequest,
    schema: str | None,
) -> Any:
    """The context manager `kind` around the running test: its handle registered for the
    plugin, its databases kept if it failed and keeping is on."""
    config = _test_config(request, manager, wanted.level)
    config.validate = wanted.validate
    return kind(
        config, schema, wanted.scenario, before_cleanup=lambda: _keep_if_failed(request, config)
    )


async def _validate_before_rollback(
    request: pytest.FixtureRequest, config: IsolatedTestConfig
) -> None:
    """The validation gate for an async test at `transaction` level: its uncommitted work is
    visible only on its own connection, on its event loop, so the check runs here, in the
    fixture's teardown before the rollback, and fails the teardown with the report."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from netra_isolation.database_state_validator import failed, failure_message

    if not config.validate or not isinstance(config.transaction_session(), AsyncSession):
        return
    if test_failed(request.node):
        return
    results = await config.validate_database_state()
    if failed(results):
        raise ValidationFailedError(failure_message(results, await config.diff_state()))


def _postgres(request: pytest.FixtureRequest, manager: TestDatabaseManager) -> IsolatedPostgres:
    wanted = _request_isolation(request, manager)
    around: IsolatedPostgres = _around_test(
        IsolatedPostgres, request, manager, wanted, wanted.schema
    )
    return around


def _clickhouse(request: pytest.FixtureRequest, manager: TestDatabaseManager) -> IsolatedClickHouse:
    wanted = _request_isolation(request, manager)
    schema = wanted.clickhouse_schema
    around: IsolatedClickHouse = _around_test(IsolatedClickHouse, request, manager, wanted, schema)
    return around


Around = Callable[[pytest.FixtureRequest, "TestDatabaseManager"], IsolatedDatabase[Any, Any]]


def _sync_fixture(around: Around, name: str | None = None, doc: str | None = None) -> Any:
    """A fixture entering `around(request, netra_manager)` with `with` for the test."""

    def fixture(request: pytest.FixtureRequest, netra_manager: TestDatabaseManager) -> Any:
        with around(request, netra_manager) as value:
            yield value

    fixture.__doc__ = doc
    return pytest.fixture(name=name)(fixture)


def _async_fixture(around: Around, name: str | None = None, doc: str | None = None) -> Any:
    """A fixture entering `around(request, netra_manager)` with `async with` for the test;
    at `transaction` level its uncommitted work is validated before the rollback."""

    async def fixture(request: pytest.FixtureRequest, netra_manager: TestDatabaseManager) -> Any:
        async with around(request, netra_manager) as value:
            yield value
            await _validate_before_rollback(request, value[-1])

    fixture.__doc__ = doc
    return _asyncio_fixture(fixture, name)


def _asyncio_fixture(fixture: Callable[..., Any], name: str | None = None) -> Any:
    """`fixture` made a fixture by pytest-asyncio. pytest-asyncio is the project's, for its
    async tests (or the `async` extra's): a sync-only project does without it, and gets in its
    place a fixture of the same name that says what to install."""
    try:
        import pytest_asyncio
    except ImportError:
        return _needs_pytest_asyncio(name or fixture.__name__, fixture.__doc__)
    return pytest_asyncio.fixture(name=name)(fixture)


def _needs_pytest_asyncio(name: str, doc: str | None) -> Any:
    def fixture() -> None:
        raise ConfigurationError(
            f"{name} is for async tests, which need pytest-asyncio, and it is not installed: "
            "pip install pytest-asyncio (or 'netra-isolation[async]'). Sync tests use "
            "isolated_postgres_sync and isolated_clickhouse_sync, which need nothing more"
        )

    fixture.__doc__ = doc
    return pytest.fixture(name=name)(fixture)


isolated_postgres = _async_fixture(
    _postgres,
    "isolated_postgres",
    "`(AsyncSession, config)` on a PostgreSQL database of the test's own.",
)
isolated_postgres_sync = _sync_fixture(
    _postgres, "isolated_postgres_sync", "`(Session, config)`: `isolated_postgres`, synchronous."
)
isolated_clickhouse = _async_fixture(
    _clickhouse,
    "isolated_clickhouse",
    "`(client, db_name, config)`: a ClickHouse database of the test's own; `await` the "
    "client's `execute`, `insert`, `scalar` and `count`.",
)
isolated_clickhouse_sync = _sync_fixture(
    _clickhouse, "isolated_clickhouse_sync", "`isolated_clickhouse` with a synchronous client."
)


@pytest.fixture
def netra_database_url(request: pytest.FixtureRequest) -> str:
    """The running test's PostgreSQL URL (psycopg driver), for code that builds its own
    engine; the test's isolated_postgres / isolated_postgres_sync if it asked for one, else
    isolated_postgres_sync."""
    for name in ("isolated_postgres", "isolated_postgres_sync", "isolated_full_stack"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    else:
        request.getfixturevalue("isolated_postgres_sync")
    configs: list[IsolatedTestConfig] = request.node.stash.get(CONFIGS, [])
    for config in configs:
        if "postgres" in config.databases:
            return config.database_url()
    raise ConfigurationError(f"{request.node.nodeid} has no PostgreSQL database")


@asynccontextmanager
async def _full_stack_env(
    request: pytest.FixtureRequest, manager: TestDatabaseManager, scenario: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Both databases for the test (`scenario`: what it defaults to), validated before the
    rollback, cleaned up after; the scale is the marker's, else the setting."""
    wanted = _request_isolation(request, manager)
    config = _test_config(request, manager, wanted.level)
    config.validate = wanted.validate
    schemas = full_stack_schemas(manager.settings, wanted.schema, wanted.clickhouse_schema)
    performance = scenario is not None
    scale = (wanted.scale or manager.settings.performance_scale) if performance else 1
    chosen = wanted.scenario or scenario
    try:
        async with full_stack(config, schemas, chosen, scale) as env:
            if performance:
                env["scale_factor"] = scale
                env["scenario"] = chosen
            yield env
            await _validate_before_rollback(request, config)
    finally:
        _keep_if_failed(request, config)
        config.cleanup_databases_sync()


@_asyncio_fixture
async def isolated_full_stack(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> Any:
    """PostgreSQL and ClickHouse, both isolated and both seeded with the marker's scenario."""
    async with _full_stack_env(request, netra_manager) as env:
        yield env


@_asyncio_fixture
async def performance_test_config(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> Any:
    """Both databases pre-loaded with the performance scenario times a scale factor (marker
    `isolation(scale=...)`, else `--netra-performance-scale`, default 5), baked into a
    template once per fingerprint and scale: tests pay for a clone, not for the seeding."""
    async with _full_stack_env(request, netra_manager, "performance") as env:
        yield env


# -- fixture factories ------------------------------------------------------------------------
_labels = itertools.count(1)  # the same in every xdist worker: conftests import in order


def _factory(
    kind: type[IsolatedDatabase[Any, Any]],
    builder: TemplateBuilder | None,
    schema: str | None,
    scenario: str | None,
    level: str | None,
    asynchronous: bool,
    name: str | None,
) -> Any:
    label = name or f"extra{next(_labels)}"

    def around(request: pytest.FixtureRequest, manager: TestDatabaseManager) -> Any:
        derived = manager.derived(label, {kind.backend: builder} if builder else {})
        config = _test_config(request, derived, level or derived.settings.level)
        keep = lambda: _keep_if_failed(request, config)  # noqa: E731
        return kind(config, schema, scenario, bind=False, before_cleanup=keep)

    return (_async_fixture if asynchronous else _sync_fixture)(around)


def postgres_fixture(
    builder: TemplateBuilder | None = None,
    *,
    schema: str | None = None,
    scenario: str | None = None,
    level: str | None = None,
    asynchronous: bool = False,
    name: str | None = None,
) -> Any:
    """A fixture giving each test a further PostgreSQL database: `(Session, config)`, or with
    `asynchronous=True` `(AsyncSession, config)`. `builder`: how its template is built (None:
    the project's own, as configured); `schema`, `scenario`, `level`: as the marker's."""
    return _factory(IsolatedPostgres, builder, schema, scenario, level, asynchronous, name)


def clickhouse_fixture(
    builder: TemplateBuilder | None = None,
    *,
    schema: str | None = None,
    scenario: str | None = None,
    asynchronous: bool = False,
    name: str | None = None,
) -> Any:
    """A fixture giving each test a further ClickHouse database: `(client, database name,
    config)`, the client async with `asynchronous=True`."""
    return _factory(IsolatedClickHouse, builder, schema, scenario, None, asynchronous, name)
