from netra_isolation import MetadataBuilder
from netra_isolation.fixtures import postgres_fixture

from shop import services
from shop.models import Base

# a template made once by create_all, cloned for every test (or just use your migrations:
# isolated_postgres_sync, with no fixture of your own at all)
shop_db = postgres_fixture(MetadataBuilder(Base.metadata))


def test_register(shop_db):
    session, config = shop_db
    services.register(session, "ada@example.com")
    assert services.customer_count(session) == 1
