"""The app's ORIGINAL conftest, as most projects write it (kept to show what the tool
removes; the e2e suite puts it in place of tests/conftest.py): the app's engine on one shared
test database (DATABASE_URL), `create_all` once, and the tests commit into it."""

import pytest
from starlette.testclient import TestClient

from real_app import db as app_db
from real_app.models import Base
from real_app.web import app


@pytest.fixture(scope="session")
def schema():
    Base.metadata.create_all(app_db.engine)
    yield
    app_db.engine.dispose()


@pytest.fixture
def db(schema):
    yield None
    app_db.Session.remove()


@pytest.fixture
def client(db):
    with TestClient(app) as client:
        yield client
