"""Each fix in netra_isolation/compat against the real ClickHouse server: the same script fails
without the fix and works with it (each run in a fresh interpreter, so nothing leaks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Any:
    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT))
    yield isolator.server
    isolator.close()


def run(script: str, fix: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(script).replace("FIX", fix)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


ASYNCH = """
import asyncio
FIX
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

async def main():
    engine = create_async_engine("clickhouse+asynch://{user}:{password}@127.0.0.1:{port}/default")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT :x + 1"), {{"x": 41}})).scalar() == 42
        like = await conn.execute(text("SELECT 'abc' LIKE :p"), {{"p": "a%"}})
        assert like.scalar() == 1
        await conn.commit()
        await conn.rollback()
    await engine.dispose()
    print("ok")

asyncio.run(main())
"""

FIXED = (
    "from netra_isolation.compat.clickhouse_asynch import patch_asynch_dialect; "
    "print(patch_asynch_dialect())"
)


def test_asynch_dialect_works_only_with_the_fixes(server: Any) -> None:
    script = ASYNCH.format(user=server.user, password=server.password, port=server.native_port)
    broken = run(script, "")
    assert broken.returncode != 0
    assert "can't be used in 'await' expression" in broken.stderr  # #374
    fixed = run(script, FIXED)
    assert fixed.returncode == 0, fixed.stderr
    assert "ok" in fixed.stdout
    assert "'connect', 'commit/rollback', '_async_soft_close'" in fixed.stdout


@pytest.mark.parametrize(
    ("leave_out", "error"),
    [
        ("commit", "NotSupportedError"),  # #385, #400
        ("_async_soft_close", "_async_soft_close"),  # #393
    ],
)
def test_each_asynch_fix_is_needed(server: Any, leave_out: str, error: str) -> None:
    """With every fix but one, the script fails on exactly that one."""
    from clickhouse_sqlalchemy.drivers.asynch import connector  # noqa: F401

    undo = {
        "commit": "C.AsyncAdapt_asynch_connection.commit = ORIG_COMMIT\n"
        "C.AsyncAdapt_asynch_connection.rollback = ORIG_ROLLBACK",
        "_async_soft_close": "del C.AsyncAdapt_asynch_cursor._async_soft_close",
    }[leave_out]
    fix = (
        "from clickhouse_sqlalchemy.drivers.asynch import connector as C\n"
        "ORIG_COMMIT = C.AsyncAdapt_asynch_connection.commit\n"
        "ORIG_ROLLBACK = C.AsyncAdapt_asynch_connection.rollback\n"
        f"{FIXED}\n{undo}"
    )
    script = ASYNCH.format(user=server.user, password=server.password, port=server.native_port)
    result = run(script, fix)
    assert result.returncode != 0
    assert error in result.stderr


def test_installed_asynch_substitutes_pyformat_parameters() -> None:
    """#400's parameter-style break was asynch 0.3.1's; the floor asynch>=0.4 excludes it."""
    from asynch.proto.connection import Connection

    assert Connection.substitute_params("SELECT %(x)s, '%%'", {"x": 1}) == "SELECT 1, '%'"


ALEMBIC_IMPORT = """
FIX
import clickhouse_sqlalchemy.alembic.dialect as dialect
print(dialect.ClickHouseDialectImpl.__dialect__)
"""


def test_alembic_dialect_imports_only_with_the_fix() -> None:
    broken = run(ALEMBIC_IMPORT, "")
    assert broken.returncode != 0 and "ImportError" in broken.stderr  # #368, #380
    fixed = run(
        ALEMBIC_IMPORT,
        "from netra_isolation.compat.clickhouse_alembic import load_alembic_dialect; "
        "load_alembic_dialect()",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "clickhouse"


CREATE_TABLE = """
FIX
import sqlalchemy as sa
from alembic.ddl import impl
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from clickhouse_sqlalchemy import engines, types
from clickhouse_sqlalchemy.drivers.http.base import ClickHouseDialect_http


class ClickHouseImpl(impl.DefaultImpl):  # the dialect's own impl needs the other fix
    __dialect__ = "clickhouse"


context = MigrationContext.configure(dialect=ClickHouseDialect_http(), opts={"as_sql": True})
table = ops.CreateTableOp(
    "t", [sa.Column("x", types.UInt32(), primary_key=True), engines.MergeTree(order_by=("x",))]
).to_table(context)
print(table.name, type(table.engine).__name__)
"""


def test_create_table_with_an_engine_only_with_the_fix() -> None:
    broken = run(CREATE_TABLE, "")
    assert broken.returncode != 0 and "_type_bound" in broken.stderr
    fixed = run(
        CREATE_TABLE,
        "from netra_isolation.compat.clickhouse_alembic import patch_engine_type_bound; "
        "patch_engine_type_bound()",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "t MergeTree"


def version_table(fix: bool) -> str:
    """The CREATE TABLE of Alembic's version table as clickhouse-sqlalchemy sets it up."""
    from types import SimpleNamespace

    from alembic.runtime.migration import MigrationContext
    from clickhouse_sqlalchemy.drivers.http.base import ClickHouseDialect_http
    from sqlalchemy.schema import CreateTable

    from netra_isolation.compat import clickhouse_alembic

    upstream = clickhouse_alembic.load_alembic_dialect()  # registers the ClickHouse impl
    dialect = ClickHouseDialect_http()
    context = MigrationContext.configure(dialect=dialect, opts={"as_sql": True})
    proxy = SimpleNamespace(_proxy=SimpleNamespace(_migration_context=context))
    if fix:
        assert clickhouse_alembic.patch_alembic_version(proxy)
    else:
        upstream.patch_alembic_version(proxy)
    return str(CreateTable(context._version).compile(dialect=dialect))


def test_version_table_keeps_every_head_on_modern_clickhouse_only_with_the_fix(
    chdb_path: Path,
) -> None:
    """#235 on ClickHouse 26.x: upstream's table merges branch heads away, the fix keeps them.
    (#399, the refusal of that table by 25.12+ servers, is not enforced by chdb's engine.)"""
    session = pytest.importorskip("chdb.session").Session(str(chdb_path))

    def count_after_merge(table: str) -> int:
        session.query(f"INSERT INTO {table} (version_num) VALUES ('basic'), ('events')")
        session.query(f"OPTIMIZE TABLE {table} FINAL")
        return int(str(session.query(f"SELECT count() FROM {table}", "CSV")).strip())

    session.query("CREATE DATABASE d")
    session.query(version_table(fix=False).replace("alembic_version", "d.upstream"))
    session.query(version_table(fix=True).replace("alembic_version", "d.fixed"))
    assert count_after_merge("d.upstream") == 1
    assert count_after_merge("d.fixed") == 2
    assert "ENGINE = MergeTree" in str(session.query("SHOW CREATE TABLE d.fixed", "TSVRaw"))
    session.close()


def test_clickhouse_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    """A PostgreSQL-only install (no `[clickhouse]` extra): the library imports and works for
    PostgreSQL; asking for ClickHouse is one clear error naming the extra."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "GONE = {'clickhouse_sqlalchemy', 'clickhouse_driver', 'asynch'}\n"
        "class NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in GONE:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
    )
    script = (
        "import netra_isolation as n\n"
        "s = n.Settings.load()\n"
        "n.PostgreSQLTestIsolator(s).close()\n"
        "try:\n"
        "    n.ClickHouseTestIsolator(s)\n"
        "except n.ConfigurationError as e:\n"
        "    print(e)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "this project's tests use ClickHouse, but clickhouse_sqlalchemy, clickhouse_driver, "
        "asynch is not installed: pip install 'netra-isolation[clickhouse]'"
    )
