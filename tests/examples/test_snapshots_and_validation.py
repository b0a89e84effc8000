import pytest
from sqlalchemy import text

from netra_isolation import with_database_snapshots
from netra_isolation.database_state_validator import db_state_validator


async def count(session, table):
    return (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()


async def test_snapshots_and_reset():
    async with with_database_snapshots("test_name", scenario="minimal") as env:
        session, config = env["postgres_session"], env["config"]

        snapshot_id = await config.create_snapshot("postgres", "after_setup")
        await session.execute(text("DELETE FROM messages"))
        await session.commit()

        # Restore: the same session keeps working afterwards
        await config.restore_snapshot(snapshot_id)
        assert await count(session, "messages") == 5

        # Make changes, see them, and reset to the state right after migration and seeding
        await session.execute(text("UPDATE users SET full_name = 'Changed' WHERE id = 1"))
        await session.commit()
        print(await config.diff_state())  # postgres.users: +0 -0 ~1 ...
        await env["reset_to_clean_state"]()
        assert (await config.diff_state()).is_empty


@pytest.mark.asyncio
@pytest.mark.isolation(scenario="analytics")
async def test_validation(isolated_full_stack):
    config = isolated_full_stack["config"]

    validation = await config.validate_database_state()
    assert validation["postgres"]["status"] == "passed"
    assert validation["clickhouse"]["status"] == "passed"
    assert validation["cross_database"]["status"] == "passed"  # every event's user exists
    print(db_state_validator.generate_validation_report(validation))
