"""A throwaway PostgreSQL for tests: found, initialised, started, reused, stopped.

Loopback only, a free port, a generated password in a 0600 state file, tuned for tests
(no fsync). The tool's own connections go through a Unix socket in the server's data
directory (0700: its user's and root's alone), where no password is exchanged: SCRAM costs
about 2 ms a connection on each side, and a test at `database` level makes one or two.

When the caller is root the server runs as an unprivileged user, because initdb refuses
root (pytest-postgresql fails here: dbfixtures/pytest-postgresql#455).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from netra_isolation.errors import (
    BinariesNotFoundError,
    ServerStartError,
    ServerUnreachableError,
)
from netra_isolation.servers import (
    EphemeralServer,
    free_port,
    pid_alive,
    private_dir,
    remove_data,
    tail,
    unprivileged_user,
)

USER = "netra"
LIBPQ_DRIVERS = ("psycopg", "psycopg2", "psycopg_async")
# the throwaway server's client authentication, written at each start: the socket in the data
# directory (0700) without a password, TCP with one
HBA = """\
# written by netra_isolation at each start
local all all trust
host all all 127.0.0.1/32 scram-sha-256
"""
SOCKET_PATH_MAX = 100  # a Unix socket's path has at most 107 bytes on Linux, 103 on macOS
TEST_TUNING = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "max_locks_per_transaction": "256",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class PostgresServerInfo:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    admin_database: str = "postgres"
    source: str = "ephemeral"
    socket_dir: str = ""  # the throwaway server's Unix socket directory, for own_url/connect

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, database: str | None = None, driver: str = "psycopg") -> URL:
        return URL.create(
            f"postgresql+{driver}",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database or self.admin_database,
        )

    def own_url(self, database: str | None = None, driver: str = "psycopg") -> URL:
        """The URL of the tool's own connections (its sessions, kept connections, checks):
        through the throwaway server's Unix socket for a libpq driver; asyncpg's to the
        throwaway server (which has no TLS) says so, as asyncpg otherwise builds an SSL
        context for every connection (about 1.5 ms) to ask. Else `url()`."""
        if driver == "asyncpg" and self.source == "ephemeral":
            return self.url(database, driver).update_query_dict({"ssl": "disable"})
        if not self.socket_dir or driver not in LIBPQ_DRIVERS:
            return self.url(database, driver)
        return URL.create(
            f"postgresql+{driver}",
            username=self.user,
            database=database or self.admin_database,
            query={"host": self.socket_dir, "port": str(self.port)},
        )

    def connect(
        self, database: str | None = None, timeout: float = 5.0, application_name: str = ""
    ) -> psycopg.Connection[Any]:
        """An autocommit admin connection (through the socket when there is one); fails
        within `timeout` naming host and port."""
        try:
            return psycopg.connect(
                application_name=application_name,
                host=self.socket_dir or self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=database or self.admin_database,
                connect_timeout=max(2, int(timeout)),
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            variable = "TEST_POSTGRES_HOST / TEST_POSTGRES_PORT"
            if self.source == "ephemeral":
                variable += " (or run `netra-isolation servers down` to reset the local one)"
            raise ServerUnreachableError(
                "PostgreSQL", self.host, self.port, variable, _first_line(exc), timeout
            ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def find_bindir(search: Sequence[str] | None = None) -> Path:
    """The directory holding initdb/pg_ctl/postgres, newest major version first."""
    candidates = list(search) if search is not None else _default_bindirs()
    for directory in candidates:
        if all((Path(directory) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    raise BinariesNotFoundError(
        "postgres",
        [f"{d}/{{initdb,pg_ctl,postgres}}" for d in dict.fromkeys(candidates)],
        "Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql; "
        "or set NETRA_ISOLATION_PG_BINDIR",
    )


def _default_bindirs() -> list[str]:
    candidates: list[str] = []
    if env_dir := os.environ.get("NETRA_ISOLATION_PG_BINDIR"):
        candidates.insert(0, env_dir)
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [*glob.glob("/usr/local/pgsql/bin"), "/usr/local/bin", "/usr/bin"]
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    return candidates


@dataclass
class _State:
    password: str
    data_dir: str
    bindir: str
    port: int = 0
    pid: int = 0
    run_as: str = ""


class EphemeralPostgres(EphemeralServer[_State, PostgresServerInfo]):
    """The project's own throwaway server; its state lives under `cache_dir/postgres`."""

    name = "postgres"
    state_type = _State

    def _info(self, state: _State) -> PostgresServerInfo:
        # a server started without the socket (too long a path, an older version) has none
        socket = Path(state.data_dir) / f".s.PGSQL.{state.port}"
        socket_dir = state.data_dir if state.port and socket.exists() else ""
        return PostgresServerInfo(
            "127.0.0.1", state.port, USER, state.password, socket_dir=socket_dir
        )

    @staticmethod
    def socket_directories(data_dir: Path, port: int) -> str:
        """The `unix_socket_directories` setting for `data_dir`: the data directory itself
        where it can be (a path short enough, with nothing PostgreSQL's setting or libpq's
        host would read apart: a quote, a comma), else none (TCP alone)."""
        fits = len(str(data_dir / f".s.PGSQL.{port}")) <= SOCKET_PATH_MAX
        plain = not any(c in str(data_dir) for c in "',\\ ")
        return f"'{data_dir}'" if fits and plain else "''"

    def _answers(self, state: _State) -> bool:
        try:
            self._info(state).connect(timeout=3).close()
        except ServerUnreachableError:
            return False
        return True

    def _terminate(self, state: _State, timeout: float) -> None:
        pg_ctl = str(Path(state.bindir) / "pg_ctl")
        stop = [pg_ctl, "-D", state.data_dir, "stop", "-m", "fast", "-t", str(int(timeout))]
        self._run(state, stop, timeout + 5)

    def _purge(self, state: _State) -> None:
        remove_data(Path(state.data_dir))

    def _run_as(self) -> str:
        return unprivileged_user("postgres", ("postgres", "nobody"))

    def _data_dir(self, run_as: str) -> Path:
        if (ram := self.ram_data_dir()) is not None:
            return ram / "pgdata"
        if not run_as:
            return self.home / "data"
        return private_dir(self.home, "postgres") / "pgdata"

    def _run(
        self, state: _State, argv: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            user=state.run_as or None,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )

    def _initdb(self, bindir: Path, run_as: str) -> _State:
        data_dir = self._data_dir(run_as)
        parent = data_dir.parent
        if data_dir.exists():
            shutil.rmtree(data_dir)
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = _State(secrets.token_urlsafe(24), str(data_dir), str(bindir), run_as=run_as)
        pwfile = parent / "pwfile"
        pwfile.write_text(state.password + "\n")
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(parent, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        try:
            result = self._run(
                state,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServerStartError("postgres", "initdb failed", result.stderr or result.stdout)
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'netra_isolation.conf'\n")
        return state

    def _start(self, state: _State | None, timeout: float) -> PostgresServerInfo:
        bindir = find_bindir()
        run_as = self._run_as()
        if (
            state is None
            or state.run_as != run_as
            or not (Path(state.data_dir) / "PG_VERSION").exists()
        ):
            state = self._initdb(bindir, run_as)
        state.bindir = str(bindir)
        state.port = free_port()
        data_dir = Path(state.data_dir)
        tuning = {
            **TEST_TUNING,
            "port": str(state.port),
            "unix_socket_directories": self.socket_directories(data_dir, state.port),
        }
        conf = data_dir / "netra_isolation.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in tuning.items()))
        hba = data_dir / "pg_hba.conf"
        hba.write_text(HBA)
        log = data_dir.parent / "server.log"
        if run_as:
            user = pwd.getpwnam(run_as)
            for path in (conf, hba, log):
                path.touch()
                os.chown(path, user.pw_uid, user.pw_gid)
        result = self._run(
            state,
            [str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-W", "start"],
            30,
        )
        if result.returncode != 0:
            raise ServerStartError("postgres", result.stderr.strip(), tail(log))
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pid = self._postmaster_pid(data_dir)
            if pid and self._answers(state):
                state.pid = pid
                self._write_state(state)
                return self._info(state)
            if pid is None and time.monotonic() - started > 5:
                break  # the postmaster exited (or never wrote its pid file): the log says why
            time.sleep(0.1)
        self._kill(data_dir)
        raise ServerStartError(
            "postgres", f"not ready within {timeout:g}s on 127.0.0.1:{state.port}", tail(log)
        )

    @staticmethod
    def _postmaster_pid(data_dir: Path) -> int | None:
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _kill(self, data_dir: Path) -> None:
        if pid := self._postmaster_pid(data_dir):
            os.kill(pid, signal.SIGQUIT)
