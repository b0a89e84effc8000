"""The app's services: they open sessions themselves, as application code does."""

from __future__ import annotations

from sqlalchemy import func, select

from notes.db import Session, SyncSession
from notes.models import AuditEntry, Author, Note


async def author_count() -> int:
    async with Session() as session:
        return (await session.scalar(select(func.count()).select_from(Author))) or 0


async def note_count() -> int:
    async with Session() as session:
        return (await session.scalar(select(func.count()).select_from(Note))) or 0


async def write_note(author_id: int, body: str) -> int:
    async with Session() as session:
        note = Note(author_id=author_id, body=body)
        session.add(note)
        await session.commit()
        return note.id


async def audit(message: str) -> int:
    async with Session() as session:
        session.add(AuditEntry(message=message))
        await session.commit()
        return (await session.scalar(select(func.count()).select_from(AuditEntry))) or 0


def register_via_scoped(email: str) -> Author:
    author = Author(email=email)
    SyncSession.add(author)
    SyncSession.commit()
    return author


def author_count_via_scoped() -> int:
    return SyncSession.scalar(select(func.count()).select_from(Author)) or 0
