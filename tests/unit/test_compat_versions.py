"""The fallbacks that let the library run on the oldest releases pyproject allows, exercised
on whatever releases are installed (scripts/test-apps.sh runs the sample apps on the lowest)."""

from __future__ import annotations

import asyncio

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.util.concurrency import greenlet_spawn

from netra_isolation.compat import factory_boy_session, sqlalchemy_greenlet


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


def test_the_in_greenlet_fallback_says_what_sqlalchemys_own_does() -> None:
    fallback = sqlalchemy_greenlet.fallback()
    assert fallback() is False
    assert sqlalchemy_greenlet.in_greenlet() is False

    async def inside() -> tuple[bool, bool]:
        return await greenlet_spawn(lambda: (fallback(), sqlalchemy_greenlet.in_greenlet()))

    assert asyncio.run(inside()) == (True, True)


def test_a_factory_follows_the_running_session_on_either_factory_boy() -> None:
    """`point_at` makes the factory write to whichever session the getter returns at each
    create(), with factory-boy 3.3's session factory or, before it, the stand-in."""
    engines = [create_engine("sqlite://") for _ in range(2)]
    for engine in engines:
        Base.metadata.create_all(engine)

    class ThingFactory(SQLAlchemyModelFactory):
        class Meta:
            model = Thing
            sqlalchemy_session_persistence = "commit"

        name = factory.Sequence(lambda n: f"thing{n}")

    sessions = [Session(engine) for engine in engines]
    running = [sessions[0]]
    factory_boy_session.point_at(ThingFactory, lambda: running[0])
    ThingFactory.create_batch(2)
    running[0] = sessions[1]
    ThingFactory()
    factory_boy_session.forget(ThingFactory)
    ThingFactory()  # still follows the getter after forget(): nothing kept on the factory
    counts = [s.scalar(select(func.count()).select_from(Thing)) for s in sessions]
    assert counts == [2, 2]
    for s in sessions:
        s.close()


def test_the_stand_in_forwards_to_the_session_of_the_moment() -> None:
    engine = create_engine("sqlite://")
    with Session(engine) as first, Session(engine) as second:
        current = [first]
        stand_in = factory_boy_session.RunningSession(lambda: current[0])
        assert stand_in.bind is engine
        stand_in.add(Thing(name="a"))
        assert list(first.new) and not list(second.new)
        current[0] = second
        stand_in.add(Thing(name="b"))
        assert len(second.new) == 1
