"""`netra-isolation gc` drops what crashed runs left, and nothing of live ones."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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


def run_on(kind: type, settings: Settings, host: str | None = None) -> Any:
    """An isolator of a run of its own (on `host`, as a CI shard elsewhere would be): its
    lease on the server says it lives until it is closed, as a killed process's ends."""
    isolator = kind(settings)
    if host is not None:
        isolator.owner = replace(isolator.owner, host=host)
    return isolator


def own_prefix(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with a prefix of the test's own, for it and the gc it runs: other processes
    of the suite, which clean what dead runs left at their start, never see its databases."""
    import uuid

    prefix = f"gcl{uuid.uuid4().hex[:6]}"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
    return Settings.load(root=ROOT).with_overrides(prefix=prefix)


def crash(isolator: Any) -> None:
    """What a SIGKILL leaves: the run's databases stay; its connections, and with them its
    lease, end (ClickHouse: its lease is not renewed and lapses; here at once)."""
    isolator.close()


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_gc_drops_the_databases_of_runs_that_are_over_and_none_of_live_ones(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_prefix(monkeypatch)
    crashed, alive = run_on(kind, settings), run_on(kind, settings)
    orphan = crashed.create_isolated_database_sync("test_orphan", nodeid="crashed::test")
    kept = alive.create_isolated_database_sync("test_alive", nodeid="alive::test")
    crash(crashed)
    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert f"dropping {orphan.name}" in out and kept.name not in out
    names = {db.name for db in alive.owned()}
    assert orphan.name not in names and kept.name in names
    alive.cleanup_all_sync()
    alive.close()


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_liveness_is_the_runs_lease_not_a_pid_on_this_host(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server shared by several machines: a run elsewhere whose lease lives is never gc's to
    drop, whatever its pid means here; once that run is over, gc from any host drops its
    databases. A live run here whose pid is dead by the process table is alive by its lease."""
    settings = own_prefix(monkeypatch)
    elsewhere = run_on(kind, settings, host=f"not-{socket.gethostname()}")
    here = run_on(kind, settings)
    here.owner = replace(here.owner, pid=dead_pid())  # a recycled or foreign pid: no matter
    try:
        remote = elsewhere.create_isolated_database_sync("test_remote", nodeid="remote::test")
        local = here.create_isolated_database_sync("test_local", nodeid="local::test")
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert remote.name not in out and local.name not in out
        crash(elsewhere)
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"dropping {remote.name}" in out and local.name not in out
        assert {db.name for db in here.owned()} >= {local.name}
        assert remote.name not in {db.name for db in here.owned()}
    finally:
        here.cleanup_all_sync()
        here.close()
        elsewhere.close()


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
    builder = run_on(kind, settings)
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

        crash(builder)
        monkeypatch.chdir(ROOT)
        monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"dropping {orphan.name}" in out
        assert not any(name in out for name in templates)
        later = kind(settings)  # still sealed: reused, not rebuilt
        try:
            assert later.templates() == templates
            assert orphan.name not in {db.name for db in later.owned()}
            assert [later.ensure_template(spec).built for spec in specs] == [False, False]
        finally:
            for db in later.owned(builder.owner.run):  # when a failure came before gc did
                later.drop(db)
            later.close()
    finally:
        builder.close()


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_a_users_own_database_with_the_prefix_is_never_dropped(
    kind: type, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database named like the tool's but without its owner tag is someone's own: neither
    gc nor a session start's cleanup takes it."""
    settings = own_prefix(monkeypatch)
    mine = f"{settings.prefix}_users_own_database"
    admin = kind(settings)
    admin.clean_on_start = False
    if kind is PostgreSQLTestIsolator:
        with admin.server.connect() as conn:
            conn.execute(f'CREATE DATABASE "{mine}"')
    else:
        admin.executor.execute(f"CREATE DATABASE {mine}")
    try:
        assert main(["gc", "--kept"]) == 0
        assert mine not in capsys.readouterr().out
        starter = kind(settings)  # a session start, which cleans what dead runs left
        starter.create_isolated_database_sync("t_start")
        starter.cleanup_all_sync()
        starter.close()
        if kind is PostgreSQLTestIsolator:
            with admin.server.connect() as conn:
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (mine,))
                assert found.fetchone() == (1,)
        else:
            found = admin.executor.execute(
                f"SELECT count() FROM system.databases WHERE name = '{mine}'"
            )
            assert found == [(1,)]
    finally:
        if kind is PostgreSQLTestIsolator:
            with admin.server.connect() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{mine}"')
        else:
            admin.executor.execute(f"DROP DATABASE IF EXISTS {mine}")
        admin.close()


def test_clickhouse_lease_rows_nobody_needs_are_trimmed_when_a_run_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lease tables do not grow run after run: rows older than a day (a live run's last
    row is seconds old) and uses older than a week go when a run starts."""
    import time
    import uuid

    from netra_isolation.liveness import LEASE_DATABASE, LEASE_TABLE, USES_TABLE

    settings = own_prefix(monkeypatch)
    first = run_on(ClickHouseTestIsolator, settings)
    assert first.executor.version  # the server answered: this run's lease (and its tables)
    old_key, recent_key = f"old-{uuid.uuid4().hex}", f"recent-{uuid.uuid4().hex}"
    ago = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=8)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    runs, uses = f"{LEASE_DATABASE}.{LEASE_TABLE}", f"{LEASE_DATABASE}.{USES_TABLE}"
    first.executor.insert(runs, ["key", "alive", "at", "seq"], [[old_key, 1, ago, 1]])
    first.executor.insert(runs, ["key", "alive", "at", "seq"], [[recent_key, 1, now, 1]])
    first.executor.insert(uses, ["template", "key", "at"], [["t", old_key, ago]])
    first.close()

    second = run_on(ClickHouseTestIsolator, settings)
    assert second.executor.version  # a run starting trims (mutations: done in a moment)
    count = "SELECT count() FROM {} WHERE key = '{}'"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        second.executor.execute(count.format(runs, old_key))[0][0]
        or second.executor.execute(count.format(uses, old_key))[0][0]
    ):
        time.sleep(0.2)
    assert second.executor.execute(count.format(runs, old_key))[0][0] == 0
    assert second.executor.execute(count.format(uses, old_key))[0][0] == 0
    assert second.executor.execute(count.format(runs, recent_key))[0][0] == 1
    second.close()
