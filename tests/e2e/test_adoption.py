"""Adopting the tool changes nothing else in a sync project: installed as a user installs it
(in an environment of its own, the newest releases), it brings no pytest-asyncio, so no
warning about pytest-asyncio's loop scope setting (which pytest-asyncio 0.24 and later print
in every run of a project without it); a run of a sync project with a database test prints no
warning at all. The async fixtures, asked for there, say what to install."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))

SYNC_PROJECT = """
from sqlalchemy import text


def test_a_note(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    session.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
    session.commit()
    assert session.scalar(text("SELECT count(*) FROM notes")) == 1


def test_without_a_database():
    assert True
"""


def sh(*command: str | Path) -> None:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of an environment where only the tool is installed, as `pip install
    netra-isolation` would (from a copy of its sources: a build writes beside them)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(
        ROOT / "netra_isolation",
        source / "netra_isolation",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    venv = tmp_path_factory.mktemp("env") / "venv"
    sh(UV, "venv", "-q", "--python", sys.executable, venv)
    sh(UV, "pip", "install", "-q", "--python", venv / "bin" / "python", source)
    return venv / "bin" / "python"


@pytest.fixture
def sync_project(
    pytester: pytest.Pytester,
    app_templates: PostgreSQLTestIsolator,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    """A sync project with no pytest-asyncio setting, its template built from a SQL file, on
    the suite's server under a prefix of its own."""
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        addopts = "-ra"

        [tool.netra_isolation]
        postgres_sql = ["schema.sql"]
        """
    )
    pytester.makefile(".sql", schema="CREATE TABLE notes (id serial PRIMARY KEY, body text);")
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(app_templates.settings.cache_dir))
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", app_templates.settings.prefix)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the next run's start: fast
    return pytester


def test_a_sync_project_gets_no_new_warning(installed: Path, sync_project: pytest.Pytester) -> None:
    sync_project.makepyfile(test_notes=SYNC_PROJECT)
    result = sync_project.run(installed, "-m", "pytest", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "asyncio" not in output  # pytest-asyncio's header line, its loop scope warning
    # nor any other warning, nor a warnings summary, nor a count of them
    assert not re.search(r"\w+Warning\b|warnings summary|\d+ warnings?\b", output), output


def test_an_async_fixture_says_what_to_install(
    installed: Path, sync_project: pytest.Pytester
) -> None:
    sync_project.makepyfile(
        test_async="""
        def test_one(isolated_postgres):
            pass


        def test_two(isolated_clickhouse):
            pass
        """
    )
    result = sync_project.run(installed, "-m", "pytest", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(errors=2)
    lines = result.stdout.lines
    for name in ("isolated_postgres", "isolated_clickhouse"):
        message = (
            f"ConfigurationError: {name} is for async tests, which need pytest-asyncio, and it "
            "is not installed: pip install pytest-asyncio (or 'netra-isolation[async]')."
        )
        assert [line for line in lines if line.startswith(message)], result.stdout.str()
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("loop_scope", [None, "module"], ids=["unset", "module"])
def test_where_pytest_asyncio_is_installed_its_settings_are_left_as_they_are(
    pytester: pytest.Pytester, loop_scope: str | None
) -> None:
    """In an environment that has pytest-asyncio (this suite's), the tool sets nothing of it:
    its header line and its warning about an unset loop scope are the same with the tool and
    without it (a default of "function" would fail a session-scoped async fixture, which runs
    on a loop of its own scope while the setting is unset)."""
    setting = "" if loop_scope is None else f'asyncio_default_fixture_loop_scope = "{loop_scope}"'
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\nasyncio_mode = 'auto'\n{setting}\n")
    pytester.makepyfile(
        """
        import asyncio

        import pytest_asyncio


        @pytest_asyncio.fixture(scope="module")
        async def loop_of_the_module():
            return asyncio.get_running_loop()


        async def test_one(loop_of_the_module):
            assert not loop_of_the_module.is_closed()


        async def test_two(loop_of_the_module):
            assert not loop_of_the_module.is_closed()
        """
    )

    def asyncio_lines(*args: str) -> list[str]:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=2)
        output = result.stdout.lines + result.stderr.lines
        return [line for line in output if "asyncio_default_fixture_loop_scope" in line]

    with_the_tool, without_it = asyncio_lines(), asyncio_lines("-p", "no:netra_isolation")
    assert with_the_tool == without_it
    assert f"asyncio_default_fixture_loop_scope={loop_scope}" in " ".join(with_the_tool)
