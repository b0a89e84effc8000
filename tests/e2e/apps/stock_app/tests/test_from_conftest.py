import pytest

from shop import services

pytestmark = pytest.mark.isolation(level="transaction")  # one clone per worker, SAVEPOINTs


def test_register(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    services.register(session, "ada@example.com")  # its commit is a SAVEPOINT
    assert services.customer_count(session) == 1
