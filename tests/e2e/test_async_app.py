"""An async project (tests/e2e/apps/async_app): AsyncSession over asyncpg, an
`async_sessionmaker` its services open sessions from, a legacy `scoped_session`, plain
factory-boy factories and a scenario defined in its conftest. Its [tool.netra_isolation]
names only its factories and sessions; its code touches no private attribute and imports
only `netra_isolation` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
APP = "async_app"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_apps_own_factories_and_sessions_use_the_tests_database(
    run_app: Any, app: pytest.Pytester, app_templates: PostgreSQLTestIsolator, workers: list[str]
) -> None:
    result = run_app(*workers)
    result.assert_outcomes(passed=22)
    assert len(app_templates.templates()) == 3  # at head, and with each scenario


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("factories", "notes.factoriez"),
        ("scenario_modules", "notes.factoriez"),
        ("sessions", "notes.dbz:Session"),
    ],
)
def test_a_misspelt_module_is_named(
    run_app: Any, app: pytest.Pytester, setting: str, value: str
) -> None:
    pyproject = app.path / "pyproject.toml"
    text = pyproject.read_text()
    for line in (
        'factories = ["notes.factories"]\n',
        'sessions = ["notes.db:Session", "notes.db:SyncSession"]\n',
    ):
        if line.startswith(setting):
            text = text.replace(line, "")
    pyproject.write_text(text + f'{setting} = ["{value}"]\n')
    result = run_app("-k", "counts_only and database and 0")
    output = result.stdout.str()
    assert f"'{value.split(':')[0]}'" in output
    assert f"setting '{setting}'" in output
    assert result.ret != 0


def test_factories_named_by_class_bring_their_subclasses(
    run_app: Any, app: pytest.Pytester
) -> None:
    """`module:Class`: the class and every subclass (CommittedAuthorFactory and
    AuthorByEmailFactory subclass AuthorFactory, each with a _meta of its own)."""
    pyproject = app.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'factories = ["notes.factories"]',
            'factories = ["notes.factories:AuthorFactory", "notes.factories:NoteFactory"]',
        )
    )
    result = run_app("-k", "commit_and_get_or_create or scoped_session")
    result.assert_outcomes(passed=8)
    pyproject.write_text(pyproject.read_text().replace(', "notes.factories:NoteFactory"', ""))
    result = run_app("-k", "commit_and_get_or_create")
    result.assert_outcomes(failed=4)  # NoteFactory has no session then
    result.stdout.fnmatch_lines(["*No session provided*"])
