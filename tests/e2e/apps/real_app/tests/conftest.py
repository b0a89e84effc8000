"""The app's conftest on netra-isolation: each test its own database (or, at `transaction`
level, the worker's in a rolled-back transaction); the app's Session, engine and factories
follow it (pyproject's [tool.netra_isolation]). Nothing else."""

import os

import pytest
from starlette.testclient import TestClient

from real_app.web import app


@pytest.fixture
def db(request, isolated_postgres_sync):
    session, config = isolated_postgres_sync
    marker = request.node.get_closest_marker("isolation")
    level = marker.kwargs["level"] if marker else None
    assert config.level == (level or os.environ.get("NETRA_ISOLATION_LEVEL", "database"))
    return config


@pytest.fixture
def client(db):
    with TestClient(app) as client:
        yield client
