from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shop.models import Customer, Order


def register(session: Session, email: str) -> Customer:
    customer = Customer(email=email)
    session.add(customer)
    session.commit()
    return customer


def place_order(session: Session, customer: Customer, total_cents: int) -> Order:
    order = Order(customer=customer, total_cents=total_cents)
    session.add(order)
    session.commit()
    return order


def customer_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0
