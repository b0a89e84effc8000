"""Tenants live in the shared schema; every tenant has the same tables in a schema of its own
(the tables here have no schema: the app's engine maps None to the tenant's)."""

from __future__ import annotations

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class SharedBase(DeclarativeBase):
    metadata = MetaData(schema="shared")


class Base(DeclarativeBase):
    pass


class Tenant(SharedBase):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    note: Mapped[str | None] = mapped_column(String(200))
