"""A user's project, run by pytester in a subprocess, on this repository's migrations and
the same throwaway server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]


def pyproject(tool_lines: str = "") -> str:
    """The project's pyproject.toml; `tool_lines` go into its [tool.netra_isolation], in place
    of the defaults below that they set again."""
    defaults = {
        "alembic_ini": f'"{ROOT / "alembic.ini"}"',
        "cache_dir": f'"{ROOT / ".netra_isolation"}"',
        "schema": '"basic"',
        "clickhouse_schema": '"basic"',
        "full_stack_schema": '"thread_messages"',
        "full_stack_clickhouse_schema": '"events"',
        "scenario_modules": '["factories.scenarios"]',
        "cross_database": '["events.user_id -> users.id"]',
        # validations that pass or fail whatever the machine's speed
        "validation_query_limit_ms": "1e9",
    }
    given = {line.split("=")[0].strip() for line in tool_lines.splitlines() if "=" in line}
    kept = "\n".join(f"{k} = {v}" for k, v in defaults.items() if k not in given)
    return f"""
[tool.pytest.ini_options]
pythonpath = ["{ROOT}"]  # the demo application this suite's projects use
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.netra_isolation]
{kept}
{tool_lines}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project that uses this repository's migrations and its running server."""
    pytester.makepyprojecttoml(pyproject())
    return pytester


@pytest.fixture
def tool_options(project: pytest.Pytester) -> Callable[[str], None]:
    """`tool_options('key = "value"')`: settings of the project's [tool.netra_isolation]."""

    def write(lines: str) -> None:
        project.makepyprojecttoml(pyproject(lines))

    return write


@pytest.fixture
def run(project: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """Run pytest over the project in a subprocess, as a user would."""

    def run_pytest(*args: str) -> pytest.RunResult:
        return project.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)

    return run_pytest


# the sample applications' own suites run in subprocesses, under their own configuration
collect_ignore = ["apps"]
APPS = Path(__file__).parent / "apps"


@pytest.fixture
def app_templates(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The templates of the sample app a test module names (`APP = "stock_app"`, and
    `BACKEND = "clickhouse"` for a ClickHouse one; else an app the module writes itself): a
    prefix of their own, so they are built by the test and dropped after it."""
    backend = getattr(request.module, "BACKEND", "postgres")
    kind = ClickHouseTestIsolator if backend == "clickhouse" else PostgreSQLTestIsolator
    name = getattr(request.module, "APP", request.module.__name__.rsplit(".", 1)[-1])
    prefix = f"ni{name.replace('_', '').removeprefix('test')[:6]}{uuid.uuid4().hex[:6]}"
    isolator = kind(Settings.load(root=ROOT).with_overrides(prefix=prefix))
    yield isolator
    try:
        for name in isolator.templates():
            isolator.drop_template(name)
    finally:
        isolator.close()


@pytest.fixture
def app(
    pytester: pytest.Pytester,
    app_templates: Any,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    """The sample app copied into a fresh directory, on the suite's servers."""
    shutil.copytree(APPS / request.module.APP, pytester.path, dirs_exist_ok=True)
    on_the_suites_server(app_templates.settings, monkeypatch)
    return pytester


def on_the_suites_server(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project's runs use the suite's servers (no server of their own, left running in a
    temporary directory pytest deletes later) and templates of `settings.prefix`."""
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", settings.prefix)


ONE_TABLE = '''
"""{table}"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "{table}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("{column}", sa.Text, nullable=False, unique=True),
    )


def downgrade():
    op.drop_table("{table}")
'''


@pytest.fixture
def async_alembic(written_app: pytest.Pytester) -> Callable[[str, str, str], None]:
    """`async_alembic(url, table, column)`: `alembic init -t async migrations` in the written
    project (an env.py that runs the migrations on a loop of its own, `asyncio.run`), its
    ini's `sqlalchemy.url` set to `url`, and one revision that makes `table` (an id, a unique
    text `column`)."""

    def init(url: str, table: str, column: str) -> None:
        alembic = Path(sys.executable).with_name("alembic")
        command = [str(alembic), "init", "-t", "async", "migrations"]
        subprocess.run(command, cwd=written_app.path, check=True, capture_output=True)
        revision = ONE_TABLE.format(table=table, column=column)
        (written_app.path / "migrations" / "versions" / f"0001_{table}.py").write_text(revision)
        ini = written_app.path / "alembic.ini"
        ini.write_text(ini.read_text().replace("driver://user:pass@localhost/dbname", url))

    return init


@pytest.fixture
def written_app(
    pytester: pytest.Pytester,
    app_templates: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> pytest.Pytester:
    """A project whose files the test module writes (its `FILES`, path -> text), on the
    suite's servers, with templates of its own built by the test and dropped after it."""
    for path, text in request.module.FILES.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    on_the_suites_server(app_templates.settings, monkeypatch)
    return pytester


@pytest.fixture
def run_app(app: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """`run_app(*args)`: the app's own suite in a pytest subprocess, as its users run it."""

    def run(*args: str) -> pytest.RunResult:
        return app.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)

    return run
