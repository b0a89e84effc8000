"""`netra-isolation gc` drops what crashed runs left, and nothing of live ones."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings
from netra_isolation.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_gc_drops_orphans_of_dead_processes_only(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    settings = Settings.load(root=ROOT)
    crashed = kind(settings)
    crashed.owner = replace(crashed.owner, pid=int(dead.stdout))
    orphan = crashed.create_isolated_database_sync("test_orphan", nodeid="crashed::test")
    alive = kind(settings)
    kept = alive.create_isolated_database_sync("test_alive", nodeid="alive::test")
    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert f"dropping {orphan.name}" in out
    names = {db.name for db in alive.owned()}
    assert orphan.name not in names and kept.name in names
    alive.cleanup_all_sync()
    alive.close()
    crashed.close()


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_gc_templates_drops_templates_which_are_then_rebuilt(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil
    import uuid

    from netra_isolation import TemplateSpec

    # templates of a migration set of this test's own, so other tests' templates stay
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    for versions in (tmp_path / "migrations").glob("*/versions"):
        first = sorted(versions.glob("0001_*.py"))[0]
        first.write_text(first.read_text() + f"\n# {uuid.uuid4()}\n")
    settings = Settings.load(root=ROOT).with_overrides(
        alembic_ini=tmp_path / "alembic.ini", prefix="gct"
    )
    isolator = kind(settings)
    ref = isolator.ensure_template(TemplateSpec("basic"))
    assert isolator.templates() == [ref.name]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", "gct")
    assert main(["gc", "--templates"]) == 0
    assert f"dropping template {ref.name}" in capsys.readouterr().out
    assert isolator.templates() == []
    rebuilt = kind(settings)
    assert rebuilt.ensure_template(TemplateSpec("basic")).built is True
    for name in rebuilt.templates():
        rebuilt.drop_template(name)
    rebuilt.close()
    isolator.close()
