"""ClickHouse and the full stack, as a user's suite meets them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

OWN_ROWS = """
import pytest

@pytest.mark.isolation(clickhouse_schema="basic")
async def test_{name}(isolated_clickhouse):
    client, db_name, config = isolated_clickhouse
    await client.insert("test_records", [{{"id": i, "name": "{name}"}} for i in range(100)])
    assert await client.execute("SELECT DISTINCT name FROM test_records") == [("{name}",)]
    assert await client.count("test_records") == 100
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_two_tests_writing_one_table_see_only_their_rows(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult], workers: list[str]
) -> None:
    project.makepyfile(
        test_own="\n".join(OWN_ROWS.format(name=n) for n in ("alpha", "beta", "gamma"))
    )
    result = run(*workers)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*databases created 3, dropped 3, kept 0, left behind 0*"])


def test_full_stack_databases_carry_the_test_id(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult]
) -> None:
    project.makepyfile(
        test_stack="""
        import pytest
        from sqlalchemy import text

        @pytest.mark.isolation(scenario="minimal")
        async def test_stack_names(isolated_full_stack):
            env = isolated_full_stack
            config = env["config"]
            assert config.test_id == "test_stack_names"
            assert config.test_id in env["clickhouse_database"]
            assert config.test_id in env["postgres_database"]
            session, client = env["postgres_session"], env["clickhouse_client"]
            current = (await session.execute(text("SELECT current_database()"))).scalar()
            assert current == env["postgres_database"]
            current = await client.scalar("SELECT currentDatabase()")
            assert current == env["clickhouse_database"]
            info = config.get_database_info()
            assert set(info) == {"postgres", "clickhouse"}
            assert all(entry["password"] == "***" for entry in info.values())
        """
    )
    run().assert_outcomes(passed=1)
