import pytest
from sqlalchemy import text


@pytest.mark.asyncio
async def test_user_creation(isolated_postgres):
    session, config = isolated_postgres

    # Your test runs in a database of its own, migrated to the "basic" schema
    await session.execute(
        text("""
        INSERT INTO test_users (email, full_name)
        VALUES ('test@example.com', 'Test User')
    """)
    )
    await session.commit()

    # Verify isolation
    result = await session.execute(text("SELECT current_database()"))
    assert config.test_id in result.scalar()


def test_user_creation_sync(isolated_postgres_sync):
    session, config = isolated_postgres_sync

    # The same email again: no other test's rows are here
    session.execute(
        text("""
        INSERT INTO test_users (email, full_name)
        VALUES ('test@example.com', 'Test User')
    """)
    )
    session.commit()
    assert session.execute(text("SELECT count(*) FROM test_users")).scalar() == 1
