"""The seed scenarios, counted exactly as the original design counts them.

Each is seeded into a template once per fingerprint (this package's code and the seed), so
tests only pay for a clone. A project adds its own with `@netra_isolation.scenario(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import factory
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from factories.clickhouse import EventFactory
from factories.postgres import (
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
    ThreadFactory,
    ThreadParticipantFactory,
    UserFactory,
)
from netra_isolation.errors import SeedError
from netra_isolation.seed_data_manager import bulk_create, registry, scenario

registry.depends_on_code(Path(__file__).parent)

Create = Callable[..., list[Any]]  # bulk_create or create_each: (factory, rows) -> made

SCENARIOS: dict[str, dict[str, int]] = {
    "minimal": {"users": 3, "threads": 2, "messages": 5, "participants": 1},
    "basic_workflow": {"users": 10, "threads": 15, "messages": 50, "participants": 2},
    "multi_user": {"users": 25, "threads": 40, "messages": 150, "participants": 4},
    "performance": {
        "users": 100,
        "threads": 200,
        "messages": 1000,
        "participants": 2,
        "events": 500,
    },
    "analytics": {"users": 50, "threads": 0, "messages": 0, "participants": 1, "events": 2000},
}


def build(
    session: Session, counts: dict[str, int], scale: int = 1, create: Create = bulk_create
) -> list[Any]:
    """Users in organizations of ten, threads with participants, messages among them.

    `create` makes each table's rows: `bulk_create` (one INSERT a table), or `create_each`
    (one `create()` a row), which gives the same rows."""
    connection = session.connection()
    if not inspect(connection).has_table("users"):
        raise SeedError(
            "scenarios need the user_management or thread_messages schema (table users); "
            "ask for one with schema=... or schema_type=..."
        )
    n_users = counts["users"] * scale
    organizations = create(OrganizationFactory, max(1, -(-n_users // 10)))
    users = create(UserFactory, n_users)
    create(
        MembershipFactory,
        [{"user": user, "organization": organizations[i // 10]} for i, user in enumerate(users)],
    )
    if not inspect(connection).has_table("threads"):
        return users  # user_management: the users and organizations are what fits
    rand = factory.random.randgen
    n_threads = counts["threads"] * scale
    others = min(counts["participants"] - 1, n_users - 1)
    members = []
    for i in range(n_threads):
        c = i % n_users  # the creator, then others chosen among the rest
        members.append([users[c], *rand.sample(users[:c] + users[c + 1 :], others)])
    threads = create(
        ThreadFactory, [{"creator": people[0], "organization_id": None} for people in members]
    )
    create(
        ThreadParticipantFactory,
        [
            {"thread": thread, "user": user}
            for thread, people in zip(threads, members, strict=True)
            for user in people
        ],
    )
    create(
        MessageFactory,
        [
            {"thread": threads[i % n_threads], "author": rand.choice(members[i % n_threads])}
            for i in range(counts["messages"] * scale)
        ],
    )
    return users


def events(user_ids: list[int], count: int) -> list[dict[str, Any]]:
    """Events whose user ids are the scenario's PostgreSQL users (ids 1..n in a fresh schema)."""
    rand = factory.random.randgen
    return [EventFactory(user_id=rand.choice(user_ids)) for _ in range(count)]


def _register(name: str, seed: int, description: str) -> None:
    counts = SCENARIOS[name]

    def seed_postgres(session: Session, scale: int = 1) -> list[Any]:
        return build(session, counts, scale)

    def seed_clickhouse(user_ids: list[int], scale: int = 1) -> dict[str, list[dict[str, Any]]]:
        if "events" not in counts:
            return {}
        return {"events": events(user_ids, counts["events"] * scale)}

    seed_postgres.__doc__ = description
    scenario(
        name,
        seed=seed,
        description=description,
        counts={k: v for k, v in counts.items() if k != "participants"},
        clickhouse=seed_clickhouse,
        schema="thread_messages",  # every scenario fits users, threads and messages
        clickhouse_schema="events",
    )(seed_postgres)


_register("minimal", 1001, "unit tests: 3 users, 2 threads, 5 messages")
_register("basic_workflow", 1002, "integration tests: 10 users, 15 threads, 50 messages")
_register("multi_user", 1003, "collaboration: 25 users, 40 threads of 4, 150 messages")
_register("performance", 1004, "load: 100 users, 200 threads, 1000 messages, 500 events")
_register("analytics", 1005, "analytics: 50 users with 2000 ClickHouse events")
