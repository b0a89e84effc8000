"""The app's services: the ORM through its `Session`, reports straight on its `engine`."""

from decimal import Decimal

from sqlalchemy import func, select, text

from real_app.db import Session, engine
from real_app.models import Order, User


def register(email: str, name: str) -> User:
    user = User(email=email, name=name)
    Session.add(user)
    try:
        Session.commit()
    except Exception:
        Session.rollback()
        raise
    return user


def place_order(user_id: int, total: Decimal) -> Order:
    order = Order(user_id=user_id, total=total)
    Session.add(order)
    Session.commit()
    return order


def user_count() -> int:
    return Session.scalar(select(func.count()).select_from(User))


def revenue() -> Decimal:
    """A report the app runs on its engine, outside any session."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT coalesce(sum(total), 0) FROM orders")).scalar_one()


def database_name() -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT current_database()")).scalar_one()
