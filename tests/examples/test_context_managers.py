from sqlalchemy import text

from netra_isolation import PostgreSQLTestIsolator, with_isolated_postgres


async def test_context_manager():
    async with with_isolated_postgres("my_test", "thread_messages") as (session, config):
        tables = await session.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        assert "messages" in tables.scalars().all()
        isolator = config.isolator("postgres")
        print(isolator.get_connection_info(config.test_id))
    # the database is dropped here


async def test_rollback_test_context():
    isolator = PostgreSQLTestIsolator()
    await isolator.create_isolated_database("test_id")

    # Every change is rolled back, commits included
    async with isolator.rollback_test_context("test_id") as session:
        await session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('x@example.com', 'X')")
        )
        await session.commit()

    async with isolator.session("test_id") as session:
        count = await session.execute(text("SELECT count(*) FROM test_users"))
        assert count.scalar() == 0
    await isolator.cleanup_all()
