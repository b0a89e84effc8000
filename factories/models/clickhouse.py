"""The application's ClickHouse tables (clickhouse-sqlalchemy); migrations/clickhouse builds
them."""

from __future__ import annotations

from clickhouse_sqlalchemy import engines, types
from sqlalchemy import Column, MetaData, func
from sqlalchemy.orm import DeclarativeBase


class ClickHouseBase(DeclarativeBase):
    metadata = MetaData()


# -- basic ------------------------------------------------------------------------------------
class TestRecord(ClickHouseBase):
    __tablename__ = "test_records"
    __test__ = False
    __table_args__ = (engines.MergeTree(order_by=("id",)),)

    id = Column(types.UInt64, primary_key=True)
    name = Column(types.String)
    created_at = Column(types.DateTime)


class TestLog(ClickHouseBase):
    __tablename__ = "test_log"
    __test__ = False
    __table_args__ = (engines.Log(),)

    message = Column(types.String, primary_key=True)
    logged_at = Column(types.DateTime)


# -- events -----------------------------------------------------------------------------------
class Event(ClickHouseBase):
    __tablename__ = "events"

    event_id = Column(types.UUID, primary_key=True)
    user_id = Column(types.UInt64)
    event_type = Column(types.String)
    properties = Column(types.String)
    timestamp = Column(types.DateTime)

    __table_args__ = (
        engines.MergeTree(
            partition_by=func.toYYYYMM(timestamp), order_by=(event_type, user_id, timestamp)
        ),
    )


# -- metrics ----------------------------------------------------------------------------------
class Metric(ClickHouseBase):
    __tablename__ = "metrics"

    metric_name = Column(types.String, primary_key=True)
    value = Column(types.Float64)
    tags = Column(types.Array(types.String))
    timestamp = Column(types.DateTime)

    __table_args__ = (
        engines.MergeTree(partition_by=func.toYYYYMM(timestamp), order_by=(metric_name, timestamp)),
    )
