"""The application's models, reused by tests, factories and migrations."""

from netra_isolation.models.postgres import (
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
