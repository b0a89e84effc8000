"""Fixture factories: a fixture of your own for each further database your tests need (an
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
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from netra_isolation.clickhouse_isolation import AsyncClickHouseClient, ClickHouseClient
from netra_isolation.isolated_test_config import IsolatedTestConfig, _finish
from netra_isolation.naming import test_id_from_nodeid
from netra_isolation.templates import TemplateBuilder
from netra_isolation.test_database_manager import TestDatabaseManager

_labels = itertools.count(1)  # the same in every xdist worker: conftests import in order


def _config(
    request: pytest.FixtureRequest,
    netra_manager: TestDatabaseManager,
    label: str,
    backend: str,
    builder: TemplateBuilder | None,
    level: str | None,
) -> IsolatedTestConfig:
    manager = netra_manager.derived(label, {backend: builder} if builder else {})
    return IsolatedTestConfig(
        test_id_from_nodeid(request.node.nodeid),
        manager=manager,
        nodeid=request.node.nodeid,
        level=level or manager.settings.level,
    )


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
    label = name or f"extra{next(_labels)}"

    if asynchronous:

        @pytest_asyncio.fixture
        async def async_database(
            request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
        ) -> AsyncIterator[tuple[AsyncSession, IsolatedTestConfig]]:
            config = _config(request, netra_manager, label, "postgres", builder, level)
            try:
                await config.setup("postgres", schema, scenario)
                async with config.postgres_session() as session:
                    yield session, config
            finally:
                _finish(request, config)

        return async_database

    @pytest.fixture
    def database(
        request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
    ) -> Iterator[tuple[Session, IsolatedTestConfig]]:
        config = _config(request, netra_manager, label, "postgres", builder, level)
        try:
            config.setup_sync("postgres", schema, scenario)
            with config.postgres_session_sync() as session:
                yield session, config
        finally:
            _finish(request, config)

    return database


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
    label = name or f"extra{next(_labels)}"

    if asynchronous:

        @pytest_asyncio.fixture
        async def async_database(
            request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
        ) -> AsyncIterator[tuple[AsyncClickHouseClient, str, IsolatedTestConfig]]:
            config = _config(request, netra_manager, label, "clickhouse", builder, None)
            try:
                db = await config.setup("clickhouse", schema, scenario)
                yield config.clickhouse_client(), db.name, config
            finally:
                _finish(request, config)

        return async_database

    @pytest.fixture
    def database(
        request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
    ) -> Iterator[tuple[ClickHouseClient, str, IsolatedTestConfig]]:
        config = _config(request, netra_manager, label, "clickhouse", builder, None)
        try:
            db = config.setup_sync("clickhouse", schema, scenario)
            yield config.clickhouse_client_sync(), db.name, config
        finally:
            _finish(request, config)

    return database
