"""factory-boy factories that commit through the app's scoped_session."""

from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from real_app.db import Session
from real_app.models import Order, User


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session = Session
        sqlalchemy_session_persistence = "commit"

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")


class OrderFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Order
        sqlalchemy_session = Session
        sqlalchemy_session_persistence = "commit"

    user = factory.SubFactory(UserFactory)
    total = Decimal("10.00")
