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


def summary(**counters: int) -> list[str]:
    """The lines `pytest_terminal_summary` writes for a run with these counters."""
    stash = pytest.Stash()
    metrics = pytest_plugin.metrics_for(SimpleNamespace(stash=stash))  # type: ignore[arg-type]
    for name, n in counters.items():
        metrics.count(name, n)
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
