"""The run summary's lines read as sentences, in the singular and the plural."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from netra_isolation import pytest_plugin


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(title)

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def summary(timings: dict[str, list[float]] | None = None, **counters: int) -> list[str]:
    """The lines `pytest_terminal_summary` writes for a run with these counters and timings
    (seconds by phase)."""
    stash = pytest.Stash()
    metrics = pytest_plugin.metrics_for(SimpleNamespace(stash=stash))  # type: ignore[arg-type]
    for name, n in counters.items():
        metrics.count(name, n)
    for phase, seconds in (timings or {}).items():
        for value in seconds:
            metrics.record(phase, value)
    config: Any = SimpleNamespace(
        stash=stash,
        getoption=lambda name, default=None: default,
        pluginmanager=SimpleNamespace(get_plugin=lambda name: None),
    )
    reporter = Reporter()
    pytest_plugin.pytest_terminal_summary(reporter, config)
    return reporter.lines


@pytest.mark.parametrize(
    ("removed", "line"),
    [
        (1, "removed 1 database left by a run that is over"),
        (4, "removed 4 databases left by runs that are over"),
    ],
)
def test_the_databases_of_runs_that_are_over(removed: int, line: str) -> None:
    assert line in summary(databases_created=1, orphans_removed=removed)


def test_no_line_when_nothing_was_left() -> None:
    assert not [line for line in summary(databases_created=1) if "left by" in line]


def test_the_phase_table_keeps_its_columns_apart() -> None:
    """A long phase name or a large total shifts the columns, never joins two figures."""
    lines = summary(
        {"to_clones_tablespace": [0.0077], "drop": [0.0085, 0.1496, 0.0111] * 400},
        databases_created=1,
    )
    header = next(line for line in lines if line.startswith("phase"))
    rows = {line.split()[0]: line for line in lines if line.startswith(("drop", "to_clones"))}
    assert rows["drop"].split()[1:] == ["1200", "11.1", "149.6", "67680.0"]
    assert rows["to_clones_tablespace"].split()[1:] == ["1", "7.7", "7.7", "7.7"]
    for row in rows.values():  # each figure's column ends where its heading does
        assert len(row) == len(header)
