"""The app's code: everything through its own `Session`."""

from sqlalchemy import func, select

from tenants.db import Session
from tenants.models import Item, Tenant


def add_item(name: str) -> int:
    item = Item(name=name)
    Session.add(item)
    Session.commit()
    return item.id


def item_count() -> int:
    return Session.scalar(select(func.count()).select_from(Item))


def tenant_count() -> int:
    return Session.scalar(select(func.count()).select_from(Tenant))
