"""`netra-isolation gc` drops what crashed runs left, and nothing of live ones."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings
from netra_isolation.cli import main

ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_gc_drops_orphans_of_dead_processes_only(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    settings = Settings.load(root=ROOT)
    crashed = kind(settings)
    crashed.owner = replace(crashed.owner, pid=dead_pid())
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
def test_gc_never_drops_a_database_owned_on_another_host(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server shared by several machines: a pid means nothing on another host, so a
    database whose owner ran elsewhere is never gc's to drop, even when no process here has
    that pid. The same dead pid on this host is an orphan."""
    monkeypatch.chdir(ROOT)
    settings = Settings.load(root=ROOT)
    pid = dead_pid()
    elsewhere = kind(settings)
    elsewhere.owner = replace(elsewhere.owner, host=f"not-{socket.gethostname()}", pid=pid)
    here = kind(settings)
    here.owner = replace(here.owner, pid=pid)
    try:
        remote = elsewhere.create_isolated_database_sync("test_remote", nodeid="remote::test")
        orphan = here.create_isolated_database_sync("test_orphan", nodeid="orphan::test")
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"dropping {orphan.name}" in out and remote.name not in out
        owned = {db.name: db.owner for db in elsewhere.owned()}
        assert orphan.name not in owned
        assert owned[remote.name].host == elsewhere.owner.host
    finally:
        elsewhere.cleanup_all_sync()
        elsewhere.close()
        here.close()


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_gc_templates_drops_stale_templates_and_keeps_current_ones(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil
    import uuid

    from netra_isolation import TemplateSpec

    # A migration set of this test's own, changed between two builds: the first template is
    # then stale, the second current. Other tests' templates (another prefix) stay.
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    prefix = f"gc{uuid.uuid4().hex[:6]}"
    settings = Settings.load(root=ROOT).with_overrides(
        alembic_ini=tmp_path / "alembic.ini", prefix=prefix
    )

    def change_migrations() -> None:
        for versions in (tmp_path / "migrations").glob("*/versions"):
            first = sorted(versions.glob("0001_*.py"))[0]
            first.write_text(first.read_text() + f"\n# {uuid.uuid4()}\n")

    def build() -> Any:
        isolator = kind(settings)
        try:
            return isolator.ensure_template(TemplateSpec("basic"))
        finally:
            isolator.close()

    change_migrations()
    old = build()
    change_migrations()
    isolator = kind(settings)
    current = isolator.ensure_template(TemplateSpec("basic"))
    assert current.built and current.name != old.name
    assert isolator.templates() == sorted([old.name, current.name])
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
    monkeypatch.setenv("NETRA_ISOLATION_ALEMBIC_INI", str(tmp_path / "alembic.ini"))

    assert main(["gc", "--older-than", "1", "--dry-run"]) == 0
    assert "would drop template" not in capsys.readouterr().out  # both built just now
    assert main(["gc", "--older-than", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"would drop template {t.name} (built over 0 days" in out for t in (old, current))

    building = f"{prefix}_tpl_basic_empty_{'0' * 12}_b"  # a build in progress: no tag yet
    if kind is PostgreSQLTestIsolator:
        with isolator.server.connect() as admin:
            admin.execute(f'CREATE DATABASE "{building}"')
    else:
        isolator.executor.execute(f"CREATE DATABASE {building}")
    assert main(["gc", "--templates", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would drop template {old.name} (built from other" in out and building not in out
    assert isolator.templates() == sorted([old.name, current.name, building])
    isolator.drop_template(building)

    assert main(["gc", "--templates"]) == 0
    out = capsys.readouterr().out
    assert f"dropping template {old.name}" in out and current.name not in out
    assert isolator.templates() == [current.name]
    assert build().built is False

    assert main(["gc", "--all-templates"]) == 0
    assert f"dropping template {current.name}" in capsys.readouterr().out
    assert isolator.templates() == []
    assert build().built is True
    for name in isolator.templates():
        isolator.drop_template(name)
    isolator.close()


SEEDED = {
    PostgreSQLTestIsolator: ("user_management", "minimal"),
    ClickHouseTestIsolator: ("events", "analytics"),
}


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_templates_are_never_owned_and_never_dropped_as_orphans(
    kind: type,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    throwaway_templates: Any,
) -> None:
    """A template carries the tag of the process that built it, long gone on later runs: were
    it listed by `owned()`, gc would drop every template. Here two templates (one seeded) are
    built by a process that is dead, next to a test database of that process, which gc does
    drop."""
    import uuid

    from netra_isolation import TemplateSpec

    prefix = f"gc{uuid.uuid4().hex[:6]}"
    settings = Settings.load(root=ROOT).with_overrides(prefix=prefix)
    specs = [TemplateSpec("basic"), TemplateSpec(*SEEDED[kind])]
    builder = kind(settings)
    builder.owner = replace(builder.owner, pid=dead_pid())
    try:
        refs = [builder.ensure_template(spec) for spec in specs]
        templates = sorted(ref.name for ref in refs)
        throwaway_templates(kind, settings, *templates)
        orphan = builder.create_isolated_database_sync("test_orphan", nodeid="orphan::test")
        owners = builder.template_owners()
        assert sorted(owners) == templates
        assert all(owner.pid == builder.owner.pid for owner in owners.values())
        for run in (None, builder.owner.run):
            owned = {db.name for db in builder.owned(run)}
            assert orphan.name in owned and not owned & set(templates)

        monkeypatch.chdir(ROOT)
        monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"dropping {orphan.name}" in out
        assert not any(name in out for name in templates)
        assert builder.templates() == templates
        assert orphan.name not in {db.name for db in builder.owned()}
        later = kind(settings)  # still sealed: reused, not rebuilt
        assert [later.ensure_template(spec).built for spec in specs] == [False, False]
        later.close()
    finally:
        builder.cleanup_all_sync()  # the orphan, when a failure came before gc dropped it
        builder.close()
