"""The suite's own throwaway PostgreSQL, whichever it is (scripts/test.sh: the [server]
extra's 18, then the machine's 15 for the `both_servers` tests): what `servers status` says
of it is what it is, and the copy method it names is the one the server uses."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from netra_isolation import PostgreSQLTestIsolator, Settings
from netra_isolation.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.both_servers


@pytest.fixture
def status(capsys: pytest.CaptureFixture[str]) -> str:
    """`netra-isolation servers status`'s line for PostgreSQL, the suite's server running."""
    settings = Settings.load(root=ROOT)
    if settings.postgres is not None:
        pytest.skip(f"the suite runs on an external server ({settings.source('postgres')})")
    isolator = PostgreSQLTestIsolator(settings)
    try:
        isolator.server  # noqa: B018 - started, if no test of this process did yet
    finally:
        isolator.close()
    capsys.readouterr()
    main(["servers", "status"])  # 3 when a server is not running: ClickHouse may not be
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("postgres:")]
    return line


def show_file_copy_method() -> str:
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    try:
        with isolator.server.connect() as conn:
            row = conn.execute("SHOW file_copy_method").fetchone()
    finally:
        isolator.close()
    assert row is not None
    return str(row[0])


def test_the_status_names_the_servers_own_version(
    status: str, postgres_version: tuple[str, int]
) -> None:
    version, _ = postgres_version
    assert status.startswith("postgres: running on 127.0.0.1:"), status
    assert f", PostgreSQL {version} (" in status, status
    assert ", copy method: " in status, status


@pytest.mark.postgres_major(max=17, reason="before 18, no file_copy_method: copies only")
def test_before_18_the_server_copies_files_and_says_why(
    status: str, postgres_version: tuple[str, int]
) -> None:
    """No `file_copy_method` written for a server that has none (it would not start), and
    the status says file copy, and why."""
    version, _ = postgres_version
    assert status.split(", copy method: ", 1)[1].startswith(
        f"file copy (PostgreSQL {version}: clones need 18 (pip install 'netra-isolation[server]'))"
    ), status
    with pytest.raises(psycopg.errors.UndefinedObject):
        show_file_copy_method()


@pytest.mark.postgres_major(min=18, reason="file_copy_method came with PostgreSQL 18")
def test_from_18_the_servers_file_copy_method_is_the_one_said(status: str) -> None:
    """clone (reflink) where the data directory takes reflinks, else copy with the reason."""
    said = status.split(", copy method: ", 1)[1]
    if said.startswith("clone (reflink, "):
        assert show_file_copy_method() == "clone"
    else:
        assert said.startswith("file copy ("), status
        assert show_file_copy_method() == "copy"
