"""Authors and their notes; an audit log in the "tenant" schema that the app's engine
translates to the default one (schema_translate_map)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    notes: Mapped[list[Note]] = relationship(back_populates="author")


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    body: Mapped[str]
    author: Mapped[Author] = relationship(back_populates="notes")


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = ({"schema": "tenant"},)  # the app's engine maps "tenant" to public

    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]
