"""SQLAlchemy model factories; every timestamp comes from a fixed window, so a seeded
scenario gives the same rows on every run and machine.

Values no test reads are cheap: sequences, and draws from the random state factory-boy
reseeds for Faker (`faker.generator.random`) rather than Faker's providers, which cost 10 to
90 microseconds a value (a name the most) when a scenario makes thousands of rows. Drawing
from Faker's state leaves factory-boy's own (`factory.random.randgen`, with which the
scenarios choose who takes part in which thread and writes which message) as it was."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
import faker.generator
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from factories.models import (
    ApiKey,
    Membership,
    Message,
    Organization,
    TestUser,
    Thread,
    ThreadParticipant,
    User,
)
from netra_isolation.binding import acreate, acreate_batch
from netra_isolation.errors import NoSessionError
from netra_isolation.seed_data_manager import (
    current_session,
    session_can_flush,
    session_can_query,
)

WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2025, 12, 31, tzinfo=UTC)
WINDOW_SECONDS = int((WINDOW_END - WINDOW_START).total_seconds())
MEMBER_ROLES = ["owner", "admin", "member", "member"]
MESSAGE_ROLES = ["user", "assistant"]


def _timestamp() -> Any:
    """A second in the window."""
    return factory.LazyFunction(
        lambda: WINDOW_START + timedelta(seconds=faker.generator.random.randrange(WINDOW_SECONDS))
    )


def _one_of(choices: list[str]) -> Any:
    return factory.LazyFunction(lambda: faker.generator.random.choice(choices))


class ModelFactory(SQLAlchemyModelFactory):
    """Adds to the test's session; flushes when the session can (sync), so ids exist."""

    class Meta:
        abstract = True
        sqlalchemy_session_factory = current_session

    @classmethod
    def _save(cls, model_class: type[Any], session: Session, args: Any, kwargs: Any) -> Any:
        obj = model_class(*args, **kwargs)
        session.add(obj)
        if session_can_flush():
            session.flush()
        return obj

    @classmethod
    async def acreate(cls, **kwargs: Any) -> Any:
        """`create()` for async tests: runs inside `AsyncSession.run_sync`, so the row is
        flushed (it has its id) and get-or-create factories can query."""
        return await acreate(cls, **kwargs)

    @classmethod
    async def acreate_batch(cls, size: int, **kwargs: Any) -> list[Any]:
        return await acreate_batch(cls, size, **kwargs)

    @classmethod
    def _get_or_create(
        cls, model_class: type[Any], session: Session, args: Any, kwargs: Any
    ) -> Any:
        if not session_can_query():
            raise NoSessionError(
                f"{cls.__name__} looks rows up (get-or-create), which needs the database: "
                f"in an async test use `await {cls.__name__}.acreate(...)`"
            )
        # factory-boy calls session.rollback() on IntegrityError, which would end the
        # test's SAVEPOINT; a nested transaction confines the failed insert instead.
        lookup = {name: kwargs[name] for name in cls._meta.sqlalchemy_get_or_create}
        found = session.query(model_class).filter_by(**lookup).one_or_none()
        if found is not None:
            return found
        with session.begin_nested():
            obj = model_class(*args, **kwargs)
            session.add(obj)
        return obj


class TestUserFactory(ModelFactory):
    __test__ = False

    class Meta:
        model = TestUser

    email = factory.Sequence(lambda n: f"test-user-{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Test User {n}")
    created_at = _timestamp()


class OrganizationFactory(ModelFactory):
    class Meta:
        model = Organization
        sqlalchemy_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    created_at = _timestamp()


class UserFactory(ModelFactory):
    class Meta:
        model = User

    full_name = factory.Sequence(lambda n: f"User {n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    is_active = True
    created_at = _timestamp()


class MembershipFactory(ModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = _one_of(MEMBER_ROLES)
    created_at = _timestamp()


class ApiKeyFactory(ModelFactory):
    class Meta:
        model = ApiKey

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    key_hash = factory.Sequence(lambda n: hashlib.sha256(f"key-{n}".encode()).hexdigest())
    created_at = _timestamp()


class ThreadFactory(ModelFactory):
    class Meta:
        model = Thread

    title = factory.Sequence(lambda n: f"Thread {n}")
    creator = factory.SubFactory(UserFactory)
    created_at = _timestamp()


class ThreadParticipantFactory(ModelFactory):
    class Meta:
        model = ThreadParticipant

    thread = factory.SubFactory(ThreadFactory)
    user = factory.SelfAttribute("thread.creator")
    joined_at = _timestamp()


class MessageFactory(ModelFactory):
    class Meta:
        model = Message

    thread = factory.SubFactory(ThreadFactory)
    author = factory.SelfAttribute("thread.creator")
    role = _one_of(MESSAGE_ROLES)
    content = factory.Sequence(lambda n: f"Message {n}")
    created_at = _timestamp()
