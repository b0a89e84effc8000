"""A module that overrides the app's session fixture without asking the tool for a
database, and a module-scoped fixture that writes through the app: neither reaches the
developer's database; each test gets one of its own, and what the module's fixture wrote
(in its worker's database) no test sees."""

import pytest
from sqlalchemy import text
from tenants import db, services


@pytest.fixture(scope="module")
def module_item():
    return services.add_item("written by a module-scoped fixture")


@pytest.fixture
def session():
    """The app's own session, as its conftest would hand it out: no database fixture."""
    yield db.Session()
    db.Session.remove()


@pytest.mark.parametrize("n", range(3))
def test_each_test_gets_a_database_of_its_own(session, module_item, n):
    assert module_item == 1  # it wrote, somewhere that is not this test's database
    assert services.item_count() == 0
    services.add_item(f"mine {n}")
    assert services.item_count() == 1
    name = session.scalar(text("SELECT current_database()"))
    assert name != "tenants_dev"
    assert "_app_" in name
