"""Plain factory-boy factories: no session configured here (the test tool supplies it)."""

import factory
from factory.alchemy import SQLAlchemyModelFactory

from notes.models import Author, Note


class AuthorFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Author
        sqlalchemy_session_persistence = "flush"

    email = factory.Sequence(lambda n: f"author{n}@example.com")


class CommittedAuthorFactory(AuthorFactory):
    class Meta:
        sqlalchemy_session_persistence = "commit"

    email = factory.Sequence(lambda n: f"committed{n}@example.com")


class AuthorByEmailFactory(AuthorFactory):
    class Meta:
        sqlalchemy_get_or_create = ("email",)


class NoteFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Note
        sqlalchemy_session_persistence = "flush"

    author = factory.SubFactory(AuthorFactory)
    body = factory.Faker("sentence")
