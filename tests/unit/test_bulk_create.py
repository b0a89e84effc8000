"""What `bulk_create` refuses, it refuses before it touches the database, saying what to use
instead (its rows against `create_each`'s: tests/integration/test_bulk_seeding.py)."""

from __future__ import annotations

from typing import Any

import factory
import pytest
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from factories import EventFactory, MembershipFactory, MessageFactory, UserFactory
from factories.models import User
from netra_isolation.errors import ConfigurationError, NoSessionError
from netra_isolation.seed_data_manager import bind_session, bulk_create


class TaggedUserFactory(UserFactory):
    @factory.post_generation
    def tags(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        pass


class SessionlessUserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"nobody{n}@example.com")


@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (lambda: bulk_create(EventFactory, 1), ConfigurationError, "SQLAlchemyModelFactory"),
        (lambda: bulk_create(TaggedUserFactory, 1), ConfigurationError, r"post-generation.*tags"),
        (
            lambda: bulk_create(UserFactory, 1, memberships=[]),
            ConfigurationError,
            "'memberships' is a one-to-many or many-to-many relationship",
        ),
        (
            lambda: bulk_create(MessageFactory, 1),  # its thread left to the sub-factory
            ConfigurationError,
            r"'thread' has no 'id' \(made by a sub-factory",
        ),
        (
            lambda: bulk_create(MembershipFactory, [{"user": User()}], organization=None),
            ConfigurationError,
            "create those rows first",
        ),
        (
            lambda: bulk_create(UserFactory, 1, nickname="x"),
            TypeError,
            "'nickname' is an invalid keyword argument for User",
        ),
    ],
)
def test_refused_before_any_io(make: Any, error: type[Exception], says: str) -> None:
    # bound to nothing: any IO would fail otherwise
    with bind_session(Session()), pytest.raises(error, match=says):
        make()


def test_a_factory_without_a_session_says_so() -> None:
    # as imported, before any test of the process bound it (`factories` unset binds every
    # factory without a session of its own, this one too, for the tests that follow)
    SessionlessUserFactory._meta.sqlalchemy_session_factory = None
    SessionlessUserFactory._meta.sqlalchemy_session = None
    with pytest.raises(NoSessionError, match="SessionlessUserFactory has no session: import"):
        bulk_create(SessionlessUserFactory, 1)


def test_an_async_test_is_told_to_await_abulk_create() -> None:
    awaited = r"await netra_isolation.binding.abulk_create"
    with bind_session(AsyncSession()), pytest.raises(NoSessionError, match=awaited):
        bulk_create(UserFactory, 1)
