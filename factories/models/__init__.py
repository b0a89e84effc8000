"""The demo application's models (this repository's own schemas), reused by its tests,
factories and migrations; not part of the library."""

from factories.models.postgres import (
    ApiKey,
    Membership,
    Message,
    Organization,
    PostgresBase,
    TestUser,
    Thread,
    ThreadParticipant,
    User,
)

__all__ = [
    "ApiKey",
    "Membership",
    "Message",
    "Organization",
    "PostgresBase",
    "TestUser",
    "Thread",
    "ThreadParticipant",
    "User",
]
