import pytest
from sqlalchemy import text

from netra_isolation import seed_data_manager


async def count(session, table):
    return (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()


@pytest.mark.asyncio
async def test_performance(performance_test_config):
    databases = performance_test_config

    # Databases pre-loaded with the performance scenario times 5, baked into a template once
    session, scale = databases["postgres_session"], databases["scale_factor"]
    assert (await count(session, "users"), await count(session, "messages")) == (500, 5000)
    assert await databases["clickhouse_client"].count("events") == 500 * scale


@pytest.mark.asyncio
@pytest.mark.isolation(scale=2)
async def test_performance_at_another_scale(performance_test_config):
    assert await count(performance_test_config["postgres_session"], "threads") == 400


@pytest.mark.asyncio
async def test_seed_scaled_data_at_runtime(isolated_full_stack):
    env = isolated_full_stack
    made = await seed_data_manager.seed_performance_data(
        env["config"].test_id,
        env["postgres_session"],
        env["clickhouse_client"],
        {"postgres": env["postgres_database"], "clickhouse": env["clickhouse_database"]},
        scale_factor=5,
    )
    session = env["postgres_session"]
    assert (made["users"], made["events"]) == (500, 2500)
    assert (await count(session, "threads"), await count(session, "messages")) == (1000, 5000)
