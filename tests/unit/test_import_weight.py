"""Importing the plugin stays light (issue 9): pytest imports it in every run, also in runs
where no test seeds, migrates or touches ClickHouse, so what only those need (factory-boy and
Faker, Alembic and Mako, the database drivers, SQLAlchemy's ORM) loads on first use. Checked
by which modules are loaded, never by how long the import takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import netra_isolation

# Top-level packages, and SQLAlchemy's ORM (the plugin needs SQLAlchemy's core only).
HEAVY = (
    "factory",
    "faker",
    "alembic",
    "mako",
    "asyncpg",
    "psycopg",
    "psycopg2",
    "clickhouse_sqlalchemy",
    "clickhouse_driver",
    "asynch",
    "chdb",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
)


def heavy(modules: list[str]) -> list[str]:
    return sorted({m for m in modules for h in HEAVY if m == h or m.startswith(f"{h}.")})


def loaded_after(statement: str) -> list[str]:
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    modules = loaded_after("import pytest, netra_isolation.pytest_plugin")
    assert "netra_isolation.pytest_plugin" in modules
    assert heavy(modules) == []
    assert "sqlalchemy" not in modules  # not even its core: read a URL, and it loads


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert heavy(loaded_after("import netra_isolation")) == []


PYTEST = ("pytest", "_pytest", "pytest_asyncio")
CLICKHOUSE = ("clickhouse_sqlalchemy", "clickhouse_driver", "asynch", "chdb")


def test_the_library_without_pytest_imports_no_pytest_and_no_clickhouse() -> None:
    """The handle, the context managers and the PostgreSQL isolator are a library: using them
    from a script loads neither pytest nor pytest-asyncio, nor anything of ClickHouse."""
    modules = loaded_after(
        "import netra_isolation\n"
        "from netra_isolation import IsolatedTestConfig, PostgreSQLTestIsolator, Settings\n"
        "from netra_isolation import with_isolated_postgres, with_isolated_clickhouse\n"
        "from netra_isolation import with_database_snapshots, TestDatabaseManager\n"
        "from netra_isolation.postgres_isolation import PostgreSQLTestIsolator\n"
        "IsolatedTestConfig('script', manager=TestDatabaseManager(Settings.load()))"
    )
    assert "netra_isolation.handle" in modules and "netra_isolation.contexts" in modules
    assert [m for m in modules if m.split(".")[0] in PYTEST + CLICKHOUSE] == []


LIGHT_TEST = (
    "import json, sys\n\n"
    "def test_light():\n"
    "    assert 'netra_isolation.pytest_plugin' in sys.modules\n"
    "    with open('modules.json', 'w') as out:\n"
    "        json.dump(sorted(sys.modules), out)\n"
)


def run_light_test(project: Path) -> tuple[str, list[str]]:
    """Run LIGHT_TEST in `project` with only this plugin and pytest-asyncio (other installed
    plugins, Faker's own, pytest-postgresql's, import what they import): the run's output
    and the modules loaded by the time the test ran. Not -q: the report header is shown."""
    (project / "test_light.py").write_text(LIGHT_TEST)
    plugins = ["-p", "netra_isolation.pytest_plugin", "-p", "pytest_asyncio.plugin"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugins],
        cwd=project,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads((project / "modules.json").read_text())


def test_a_run_whose_tests_use_no_database_loads_nothing_heavy(tmp_path: Path) -> None:
    """The whole plugin at work (options, configure, report header, the test's hooks) in a
    project without ClickHouse, with one test that asks for no database."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    _, modules = run_light_test(tmp_path)
    assert heavy(modules) == []


def test_a_project_that_uses_clickhouse_loads_it_only_when_a_test_does(tmp_path: Path) -> None:
    """This repository's alembic.ini has a [clickhouse] section; a test that asks for no
    database loads nothing of ClickHouse (its drivers cost half a second)."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.netra_isolation]\nalembic_ini = "{root / "alembic.ini"}"\n'
    )
    output, modules = run_light_test(tmp_path)
    assert "clickhouse = throwaway local server" in output  # it does use ClickHouse
    assert [m for m in modules if m.split(".")[0] in CLICKHOUSE] == []


def test_every_exported_name_still_imports() -> None:
    """The package's names load on first use: each one of `__all__` resolves."""
    for name in netra_isolation.__all__:
        assert getattr(netra_isolation, name) is not None, name
    from netra_isolation import IsolatedTestConfig, Settings, TestDatabaseManager, acreate

    assert IsolatedTestConfig.__module__ == "netra_isolation.handle"
    assert Settings.__module__ == "netra_isolation.settings"
    assert TestDatabaseManager.__module__ == "netra_isolation.test_database_manager"
    assert acreate.__module__ == "netra_isolation.binding"
