"""Templates superseded by a newer build (other migrations, scenario code or server) are
dropped once no live run uses them, the newest `keep_superseded` of them kept: RAM and disk
stay bounded however often the code changes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
KINDS = [PostgreSQLTestIsolator, ClickHouseTestIsolator]
SCHEMA = {PostgreSQLTestIsolator: "basic", ClickHouseTestIsolator: "basic"}


def settings_of_own(monkeypatch: pytest.MonkeyPatch, **values: Any) -> Settings:
    prefix = f"prn{uuid.uuid4().hex[:6]}"
    monkeypatch.chdir(ROOT)
    return Settings.load(root=ROOT).with_overrides(prefix=prefix, **values)


def build(kind: type, settings: Settings, version: str) -> Any:
    """A process on code `version` (the template's fingerprint changes with it) that built or
    reused its template; alive until closed."""
    isolator = kind(settings.with_overrides(template_version=version))
    isolator.ensure_template(isolator_spec(isolator, kind))
    return isolator


def isolator_spec(isolator: Any, kind: type) -> Any:
    from netra_isolation import TemplateSpec

    return TemplateSpec(SCHEMA[kind])


def templates(isolator: Any) -> set[str]:
    return set(isolator.template_owners())


def finish(kind: type, settings: Settings, *isolators: Any) -> None:
    """Close the runs; drop every template of the test's prefix."""
    for isolator in isolators:
        isolator.close()
    cleanup = kind(settings)
    for name in templates(cleanup):
        cleanup.drop_template(name)
    cleanup.close()


@pytest.mark.parametrize("kind", KINDS)
def test_older_builds_go_once_their_runs_are_over_keeping_the_newest(
    kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of_own(monkeypatch, keep_superseded=1)
    v1 = build(kind, settings, "v1")  # still running: its template stays, however old
    first = templates(v1)
    v2 = build(kind, settings, "v2")
    v2.close()
    v3 = build(kind, settings, "v3")
    assert first <= templates(v3) and len(templates(v3)) == 3  # v1 in use, v2 the one kept
    v1.close()  # its run is over
    v4 = build(kind, settings, "v4")
    left = templates(v4)
    assert len(left) == 2 and not first & left  # v4 and v3 (the newest superseded)
    assert v4.metrics.counters["templates_pruned"] == 2  # v1 and v2
    finish(kind, settings, v3, v4)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pruned_template_is_built_again_by_a_run_that_still_needs_it(
    kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run on old code that starts after its template was pruned builds it again."""
    settings = settings_of_own(monkeypatch, keep_superseded=0)
    old = build(kind, settings, "old")
    name = next(iter(templates(old)))
    old.close()
    new = build(kind, settings, "new")
    assert name not in templates(new)
    again = build(kind, settings, "old")
    assert again.metrics.counters["templates_built"] == 1 and name in templates(again)
    db = again.create_isolated_database_sync("after_pruning")
    assert db.template is not None and db.template.name == name
    again.cleanup_all_sync()
    finish(kind, settings, new, again)


def test_what_a_build_that_died_left_goes_and_a_running_build_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An untagged database of the template family is a build running (its builder holds the
    build's lock) or one that died half-way (nobody does): the first stays, the second goes,
    when a run next builds or reuses a template."""
    import threading

    from netra_isolation import SetupBuilder, TemplateSpec

    settings = settings_of_own(monkeypatch)
    building, release = threading.Event(), threading.Event()

    def slow_setup(connection: Any) -> None:
        building.set()
        assert release.wait(60)

    slow = PostgreSQLTestIsolator(settings, builder=SetupBuilder(slow_setup))
    thread = threading.Thread(target=slow.ensure_template, args=(TemplateSpec("head"),))
    thread.start()
    try:
        assert building.wait(60)
        dead = f"{settings.prefix}_tpl_basic_empty_0123456789ab_b"  # as a killed build leaves it
        with slow.server.connect() as admin:
            admin.execute(f'CREATE DATABASE "{dead}"')
        untagged = {name for name, owner in slow.template_owners().items() if owner is None}
        running = untagged - {dead}
        assert len(running) == 1  # the slow build's database

        other = build(PostgreSQLTestIsolator, settings, "v1")
        left = templates(other)
        assert dead not in left and running <= left
        assert other.metrics.counters["templates_pruned"] == 1
    finally:
        release.set()
        thread.join(60)
    finish(PostgreSQLTestIsolator, settings, slow, other)
