"""Rows for the ClickHouse event and metric tables, as dicts: inserted one batch per table."""

from __future__ import annotations

import json
from datetime import datetime

import factory

# ClickHouse DateTime columns hold naive UTC timestamps.
WINDOW_START = datetime(2025, 1, 1)
WINDOW_END = datetime(2025, 12, 31)
EVENT_TYPES = ["page_view", "message_sent", "thread_created", "login", "api_call"]
METRIC_NAMES = ["latency_ms", "tokens", "queue_depth", "error_rate"]


class EventFactory(factory.DictFactory):
    event_id = factory.Faker("uuid4")
    user_id = factory.Faker("random_int", min=1, max=50)
    event_type = factory.Faker("random_element", elements=EVENT_TYPES)
    properties = factory.LazyFunction(
        lambda: json.dumps({"source": factory.random.randgen.choice(["web", "api", "cli"])})
    )
    timestamp = factory.Faker("date_time_between", start_date=WINDOW_START, end_date=WINDOW_END)


class MetricFactory(factory.DictFactory):
    metric_name = factory.Faker("random_element", elements=METRIC_NAMES)
    value = factory.Faker("pyfloat", min_value=0, max_value=1000, right_digits=3)
    tags = factory.LazyFunction(
        lambda: [f"region={factory.random.randgen.choice(['eu', 'us', 'ap'])}"]
    )
    timestamp = factory.Faker("date_time_between", start_date=WINDOW_START, end_date=WINDOW_END)
