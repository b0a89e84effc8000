"""The settings `engines`, `postgres_driver` and `process_setup`, without a server: which
driver the tool's sessions use, and the errors a wrong value gets."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from netra_isolation import ConfigurationError, Settings, TestDatabaseManager, follow_engine
from netra_isolation.engines import postgres_driver


def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """A module of an app's, importable by the name returned."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.load(environ={}, root=tmp_path).with_overrides(**values)


def test_the_driver_is_the_setting_else_the_apps_engine_else_psycopg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(
        tmp_path,
        monkeypatch,
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "engine = create_engine('postgresql://app@127.0.0.1:1/app_dev')\n"  # psycopg2
        "async_engine = create_async_engine('postgresql+asyncpg://app@127.0.0.1:1/app_dev')\n",
    )
    assert postgres_driver(settings(tmp_path), "sync") == "psycopg"
    assert postgres_driver(settings(tmp_path), "async") == "asyncpg"
    from_engine = settings(tmp_path, engines=(f"{module}:async_engine", f"{module}:engine"))
    assert postgres_driver(from_engine, "sync") == "psycopg2"
    assert postgres_driver(from_engine, "async") == "asyncpg"
    named = settings(tmp_path, engines=(f"{module}:engine",), postgres_driver="psycopg")
    assert postgres_driver(named, "sync") == "psycopg"


def test_postgres_driver_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.netra_isolation]\npostgres_driver = "psycopg2, asyncpg"\n'
    )
    loaded = Settings.load(environ={}, root=tmp_path)
    assert postgres_driver(loaded, "sync") == "psycopg2"
    assert postgres_driver(loaded, "async") == "asyncpg"
    with pytest.raises(ConfigurationError, match=r"'pg8000'.*NETRA_ISOLATION_POSTGRES_DRIVER"):
        Settings.load(environ={"NETRA_ISOLATION_POSTGRES_DRIVER": "pg8000"}, root=tmp_path)
    with pytest.raises(ConfigurationError, match="more than one of psycopg, psycopg2"):
        Settings.load(
            environ={"NETRA_ISOLATION_POSTGRES_DRIVER": "psycopg,psycopg2"}, root=tmp_path
        )


def test_a_driver_that_is_not_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r"'psycopg2'.*pip install psycopg2-binary"):
        postgres_driver(settings(tmp_path, postgres_driver="psycopg2"), "sync")


def test_engines_must_be_postgresql_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(tmp_path, monkeypatch, "Session = object()\n")
    for spec, message in [
        (f"{module}:Session", "is a object, not a SQLAlchemy Engine"),
        (f"{module}:engine", "has no 'engine'"),
        (module, "is not `module:attribute`"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            postgres_driver(settings(tmp_path, engines=(spec,)), "sync")
    with pytest.raises(ConfigurationError, match="sqlite engine"):
        follow_engine(create_engine("sqlite://"))


def test_process_setup_runs_once_per_manager_and_again_after_it_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(
        tmp_path,
        monkeypatch,
        "calls = []\n"
        "def register():\n"
        "    calls.append(1)\n"
        "    if len(calls) == 1:\n"
        "        raise RuntimeError('plugin registry is down')\n",
    )
    manager = TestDatabaseManager(settings(tmp_path, process_setup=f"{module}:register"))
    derived = manager.derived("audit", {})
    with pytest.raises(RuntimeError, match="registry is down"):
        manager.run_process_setup()
    derived.run_process_setup()  # the derived manager's first database: called again
    manager.run_process_setup()
    derived.run_process_setup()
    assert sys.modules[module].calls == [1, 1]
    with pytest.raises(
        ConfigurationError, match=r"of the setting 'process_setup'.*has no 'missing'"
    ):
        TestDatabaseManager(
            settings(tmp_path, process_setup=f"{module}:missing")
        ).run_process_setup()
