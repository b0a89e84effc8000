"""The throwaway server itself, in a cache directory of its own."""

from __future__ import annotations

import json
import os
import pwd
import signal
import stat
from pathlib import Path

import pytest

from netra_isolation.backends.clickhouse.server import EphemeralClickHouse
from netra_isolation.backends.postgres.server import EphemeralPostgres, find_bindir
from netra_isolation.cli import main
from netra_isolation.servers import RAM_DIR, pid_alive, ram_dir


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = EphemeralPostgres(tmp_path)
    yield server
    server.stop(purge=True)


def test_start_reuse_stop(server: EphemeralPostgres) -> None:
    info = server.ensure_running()
    again = server.ensure_running()
    assert again == info
    with info.connect() as conn:
        row = conn.execute("SHOW fsync").fetchone()
        assert row == ("off",)
        addresses = conn.execute("SHOW listen_addresses").fetchone()
        assert addresses == ("127.0.0.1",)
    state = json.loads(server.state_path.read_text())
    # initdb refuses root: started by root, the server runs as an unprivileged user; else as us
    runs_as = pwd.getpwnam(state["run_as"]).pw_uid if state["run_as"] else os.geteuid()
    assert os.stat(f"/proc/{state['pid']}").st_uid == runs_as != 0
    assert stat.S_IMODE(server.state_path.stat().st_mode) == 0o600
    assert server.status() == info
    assert server.stop() is True
    assert server.status() is None
    restarted = server.ensure_running()
    assert restarted.password == info.password  # same data directory, same password


@pytest.mark.parametrize("place", ["ram", "disk"])
def test_data_in_ram_or_on_disk(tmp_path: Path, place: str) -> None:
    """`server_data`: RAM (a tmpfs) keeps clones fast however many databases came and went."""
    if place == "ram" and ram_dir() is None:
        pytest.skip(f"no tmpfs with room at {RAM_DIR} on this machine")
    server = EphemeralPostgres(tmp_path, place)
    try:
        with server.ensure_running().connect() as conn:
            data = Path(conn.execute("SHOW data_directory").fetchone()[0])
        assert data.is_relative_to(RAM_DIR) is (place == "ram")
    finally:
        server.stop(purge=True)
    assert not data.exists()
    if place == "ram":  # its own directory in RAM (the server log was there too) is gone
        assert not any(p.parent == RAM_DIR and p.exists() for p in data.parents)


def test_purging_a_cache_whose_state_is_gone_stops_its_server_in_ram(tmp_path: Path) -> None:
    """A server whose cache lost its state (deleted under it) but still runs in RAM: `servers
    down --purge` stops it, then removes its data, instead of deleting the data from under
    it and leaving it running."""
    if ram_dir() is None:
        pytest.skip(f"no tmpfs with room at {RAM_DIR} on this machine")
    server = EphemeralPostgres(tmp_path)
    server.ensure_running()
    pid = json.loads(server.state_path.read_text())["pid"]
    try:
        server.state_path.unlink()
        assert server.stop(purge=True) is True
        assert not pid_alive(pid)
        assert not server.ram_home().exists()
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGQUIT)


def test_wrong_password_is_refused(server: EphemeralPostgres) -> None:
    from dataclasses import replace

    from netra_isolation.errors import ServerUnreachableError

    info = server.ensure_running()
    with pytest.raises(ServerUnreachableError, match="password authentication failed"):
        replace(info, password="wrong", socket_dir="").connect()  # over TCP


def test_the_tools_socket_is_its_users_alone(server: EphemeralPostgres) -> None:
    """The tool's own connections go through a socket in the server's data directory (0700),
    without a password; another OS user cannot reach it, and TCP still asks for one."""
    import subprocess
    from dataclasses import replace

    info = server.ensure_running()
    assert info.socket_dir and Path(info.socket_dir, f".s.PGSQL.{info.port}").exists()
    assert stat.S_IMODE(os.stat(info.socket_dir).st_mode) == 0o700
    with replace(info, password="").connect() as conn:  # no password through the socket
        assert conn.execute("SELECT current_user").fetchone() == (info.user,)
        assert conn.pgconn.host.decode() == info.socket_dir
    if os.geteuid() != 0:
        return
    # root can reach any directory; an unprivileged user other than the server's cannot
    other = next(
        user
        for user in ("nobody", "daemon")
        if user != json.loads(server.state_path.read_text())["run_as"]
    )
    psql = find_bindir() / "psql"
    done = subprocess.run(
        [str(psql), "-h", info.socket_dir, "-p", str(info.port), "-U", info.user, "-d",
         "postgres", "-w", "-c", "SELECT 1"],
        user=other, capture_output=True, text=True, cwd="/",
    )  # fmt: skip
    assert done.returncode != 0
    assert "Permission denied" in done.stderr or "No such file" in done.stderr, done.stderr


def test_cli_status_up_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(tmp_path))
    try:
        assert main(["servers", "status"]) == 3
        assert "not running" in capsys.readouterr().out
        assert main(["servers", "up"]) == 0
        assert main(["servers", "status"]) == 0
        out = capsys.readouterr().out
        assert "postgres: running on 127.0.0.1:" in out
        assert "clickhouse: running on 127.0.0.1 http" in out
        clickhouse_data = Path(
            json.loads(EphemeralClickHouse(tmp_path).state_path.read_text())["data_dir"]
        )
        assert clickhouse_data.is_relative_to(RAM_DIR) is (ram_dir() is not None)  # auto
        assert main(["servers", "down", "--purge"]) == 0
        out = capsys.readouterr().out
        assert "postgres: stopped, data removed" in out
        assert "clickhouse: stopped, data removed" in out
        assert not clickhouse_data.exists()
    finally:
        EphemeralPostgres(tmp_path).stop(purge=True)
        EphemeralClickHouse(tmp_path).stop(purge=True)


def test_a_server_that_cannot_start_fails_with_its_log(server: EphemeralPostgres) -> None:
    from netra_isolation.errors import ServerStartError

    server.ensure_running()
    state = json.loads(server.state_path.read_text())
    # written while it runs: a stopped server's XFS image in RAM (as root) is unmounted
    with open(Path(state["data_dir"]) / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'not a size'\n")
    server.stop()
    with pytest.raises(ServerStartError) as info:
        server.ensure_running(timeout=20)
    message = str(info.value)
    assert "last lines of the server log" in message
    assert "shared_buffers" in message


def test_clickhouse_runs_unprivileged_and_restarts_on_its_data(tmp_path: Path) -> None:
    """Started by root, the throwaway ClickHouse runs as an unprivileged user (as PostgreSQL
    does); else as us. Its data survives a restart."""
    server = EphemeralClickHouse(tmp_path)
    try:
        info = server.ensure_running()
        state = json.loads(server.state_path.read_text())
        runs_as = pwd.getpwnam(state["run_as"]).pw_uid if state["run_as"] else os.geteuid()
        assert os.stat(f"/proc/{state['pid']}").st_uid == runs_as != 0
        info.query("CREATE TABLE default.kept (id UInt8) ENGINE = TinyLog")
        info.query("INSERT INTO default.kept VALUES (7)")
        assert server.stop() is True
        again = server.ensure_running()
        assert again.query("SELECT id FROM default.kept").strip() == "7"
    finally:
        server.stop(purge=True)
    assert not Path(state["data_dir"]).exists()


def test_a_data_directory_the_socket_setting_cannot_hold_is_served_over_tcp() -> None:
    """A quote or a comma in the path would break postgresql.conf or libpq's host list; a
    path too long for a socket cannot have one: those servers take TCP alone."""
    assert (
        EphemeralPostgres.socket_directories(Path("/dev/shm/n/pgdata"), 5432)
        == "'/dev/shm/n/pgdata'"
    )
    for odd in ("/tmp/it's/pgdata", "/tmp/a,b/pgdata", "/tmp/" + "x" * 120):
        assert EphemeralPostgres.socket_directories(Path(odd), 5432) == "''", odd
