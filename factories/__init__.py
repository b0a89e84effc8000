"""factory-boy factories for the application's models, and the seed scenarios built from them.

PostgreSQL factories take their session from the running test (`current_session`), so
`UserFactory()` inside a test lands in that test's database.
"""

from factories.clickhouse import EventFactory, MetricFactory
from factories.postgres import (
    ApiKeyFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
    TestUserFactory,
    ThreadFactory,
    ThreadParticipantFactory,
    UserFactory,
)

__all__ = [
    "ApiKeyFactory",
    "EventFactory",
    "MembershipFactory",
    "MessageFactory",
    "MetricFactory",
    "OrganizationFactory",
    "TestUserFactory",
    "ThreadFactory",
    "ThreadParticipantFactory",
    "UserFactory",
]
