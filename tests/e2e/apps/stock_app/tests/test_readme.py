import pytest

from shop import services  # your application's code, unchanged


def test_register(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    services.register(session, "same@example.com")  # commits; no other test sees it
    assert services.customer_count(session) == 1


@pytest.mark.isolation(level="transaction")  # one clone per worker, rolled back per test
def test_register_rolled_back(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    services.register(session, "same@example.com")  # its commit is a SAVEPOINT here
    assert services.customer_count(session) == 1
