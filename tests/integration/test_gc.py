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
