"""Rows for the ClickHouse event and metric tables, as dicts: inserted one batch per table.

As in factories.postgres, values no test reads are drawn from the random state factory-boy
reseeds for Faker (`faker.generator.random`), not from Faker's providers, and leave
factory-boy's own (`factory.random.randgen`: an event's user and source) as it was."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import factory
import factory.random
import faker.generator

# ClickHouse DateTime columns hold naive UTC timestamps.
WINDOW_START = datetime(2025, 1, 1)
WINDOW_END = datetime(2025, 12, 31)
WINDOW_SECONDS = int((WINDOW_END - WINDOW_START).total_seconds())
EVENT_TYPES = ["page_view", "message_sent", "thread_created", "login", "api_call"]
METRIC_NAMES = ["latency_ms", "tokens", "queue_depth", "error_rate"]


def _timestamp() -> datetime:
    return WINDOW_START + timedelta(seconds=faker.generator.random.randrange(WINDOW_SECONDS))


class EventFactory(factory.DictFactory):
    event_id = factory.LazyFunction(
        lambda: str(uuid.UUID(int=faker.generator.random.getrandbits(128), version=4))
    )
    user_id = factory.LazyFunction(lambda: faker.generator.random.randint(1, 50))
    event_type = factory.LazyFunction(lambda: faker.generator.random.choice(EVENT_TYPES))
    properties = factory.LazyFunction(
        lambda: json.dumps({"source": factory.random.randgen.choice(["web", "api", "cli"])})
    )
    timestamp = factory.LazyFunction(_timestamp)


class MetricFactory(factory.DictFactory):
    metric_name = factory.LazyFunction(lambda: faker.generator.random.choice(METRIC_NAMES))
    value = factory.LazyFunction(lambda: round(faker.generator.random.uniform(0, 1000), 3))
    tags = factory.LazyFunction(
        lambda: [f"region={factory.random.randgen.choice(['eu', 'us', 'ap'])}"]
    )
    timestamp = factory.LazyFunction(_timestamp)
