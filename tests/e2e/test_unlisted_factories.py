"""A project that lists no `factories`: every factory-boy factory it has imported by the time
a test starts that names no session of its own writes to that test's session (factory-boy
would raise "No session provided." otherwise); a factory given a session of its own keeps it.
Run by pytester in a subprocess, serially and with `-n 2`."""

from __future__ import annotations

import pytest

FILES = {
    "pyproject.toml": """
[tool.pytest.ini_options]
pythonpath = ["."]

[tool.netra_isolation]
postgres_metadata = "shop.models:Base"
""",
    "shop/__init__.py": "",
    "shop/models.py": """
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer: Mapped[Customer] = relationship()
""",
    "tests/__init__.py": "",
    "tests/factories.py": """
import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from shop.models import Customer, Order

OWN = Session()  # a session of the factory's own, bound to nothing


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"


class CustomerFactory(Base):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"customer {n}")


class OrderFactory(Base):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)


class OwnSessionFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Customer
        sqlalchemy_session = OWN
""",
    "tests/test_shop.py": """
import pytest
from sqlalchemy import func, select

from shop.models import Customer, Order
from tests.factories import OWN, CustomerFactory, OrderFactory, OwnSessionFactory


@pytest.mark.parametrize("n", range(3))
def test_unlisted_factories_write_to_the_tests_session(isolated_postgres_sync, n):
    session, _ = isolated_postgres_sync
    OrderFactory.create_batch(2)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Order)) == 2
    assert session.scalar(select(func.count()).select_from(Customer)) == 2  # no other test's


def test_a_factory_with_a_session_of_its_own_keeps_it(isolated_postgres_sync):
    assert OwnSessionFactory._meta.sqlalchemy_session is OWN
    assert CustomerFactory._meta.sqlalchemy_session is not OWN
""",
}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_unlisted_factories_follow_the_test(
    written_app: pytest.Pytester, workers: list[str]
) -> None:
    result = written_app.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
    result.assert_outcomes(passed=4)
