"""A throwaway ClickHouse for tests: generated config, started, reused, stopped.

Works with Debian's `clickhouse-server` (18.16) and with a modern single `clickhouse` binary
(`clickhouse server --config-file ...`). Loopback only, free HTTP and native ports, data under
the project cache directory, a generated password for the user the tool uses.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netra_isolation.errors import (
    BinariesNotFoundError,
    ClickHouseQueryError,
    ServerStartError,
    ServerUnreachableError,
)
from netra_isolation.servers import (
    EphemeralServer,
    free_port,
    own_by,
    private_dir,
    remove_data,
    tail,
    unprivileged_user,
    wait_gone,
)

USER = "netra"
# Queries the server runs at once, for all users and for the tool's (the same: it is the only
# user). The per-user limit is in the profile, where SQL can read it (system.settings), so the
# validator's pool check knows it on servers that have no system.server_settings.
MAX_QUERIES = 200

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{home}/server.log</log>
    <errorlog>{home}/server.err.log</errorlog><size>10M</size><count>2</count></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{native_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{data_dir}/</path>
  <tmp_path>{data_dir}/tmp/</tmp_path>
  <user_files_path>{data_dir}/user_files/</user_files_path>
  <format_schema_path>{data_dir}/format_schemas/</format_schema_path>
  <users_config>{home}/users.xml</users_config>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>{max_queries}</max_concurrent_queries>
  <max_server_memory_usage_to_ram_ratio>0.25</max_server_memory_usage_to_ram_ratio>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage>
    <max_threads>2</max_threads>
    <max_concurrent_queries_for_user>{max_queries}</max_concurrent_queries_for_user>
  </default></profiles>
  <users>
    <{user}>
      <password_sha256_hex>{password_sha256}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
      <access_management>1</access_management>
    </{user}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


@dataclass(frozen=True)
class ClickHouseServerInfo:
    host: str
    http_port: int
    native_port: int
    user: str
    password: str = field(repr=False)
    source: str = "ephemeral"

    @property
    def where(self) -> str:
        return f"{self.host} http {self.http_port} native {self.native_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/"

    def query(self, sql: str, database: str | None = None, timeout: float = 5.0) -> str:
        """Run one statement over HTTP; fails within `timeout` naming host and port."""
        params = {"database": database} if database else {}
        url = self.http_url + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, data=sql.encode(), method="POST")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return str(response.read().decode())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()
            raise ClickHouseQueryError(body or str(exc), sql) from None
        except (urllib.error.URLError, OSError) as exc:
            variable = "TEST_CLICKHOUSE_HOST / TEST_CLICKHOUSE_PORT"
            if self.source == "ephemeral":
                variable += " (or run `netra-isolation servers down` to reset the local one)"
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachableError(
                "ClickHouse", self.host, self.http_port, variable, reason, timeout
            ) from exc

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.http_url + "ping", timeout=timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def find_clickhouse(search: list[str] | None = None) -> list[str]:
    """The command that runs a server: a modern single binary first, then Debian's."""
    directories = search if search is not None else os.environ.get("PATH", "").split(os.pathsep)
    directories = (
        [*directories, "/usr/bin", "/usr/sbin", "/usr/local/bin"] if search is None else directories
    )
    for directory in directories:
        single = Path(directory) / "clickhouse"
        if single.is_file() and os.access(single, os.X_OK):
            return [str(single), "server"]
    for directory in directories:
        server = Path(directory) / "clickhouse-server"
        if server.is_file() and os.access(server, os.X_OK):
            return [str(server)]
    raise BinariesNotFoundError(
        "clickhouse",
        [f"{d}/{{clickhouse,clickhouse-server}}" for d in dict.fromkeys(directories)],
        "Debian/Ubuntu: apt-get install clickhouse-server; or a single `clickhouse` binary on PATH",
    )


@dataclass
class _State:
    password: str
    http_port: int = 0
    native_port: int = 0
    pid: int = 0
    data_dir: str = ""  # kept across restarts; in RAM or under the cache directory
    run_as: str = ""  # the unprivileged user a server started by root runs as


class EphemeralClickHouse(EphemeralServer[_State, ClickHouseServerInfo]):
    """The project's own throwaway ClickHouse; its state lives under `cache_dir/clickhouse`."""

    name = "clickhouse"
    state_type = _State

    def __init__(self, cache_dir: Path, data: str = "auto", max_queries: int = MAX_QUERIES) -> None:
        super().__init__(cache_dir, data)
        self.max_queries = max_queries  # for a server this starts; a running one keeps its own

    def _info(self, state: _State) -> ClickHouseServerInfo:
        return ClickHouseServerInfo(
            "127.0.0.1", state.http_port, state.native_port, USER, state.password
        )

    def _answers(self, state: _State) -> bool:
        return self._info(state).ping()

    def _terminate(self, state: _State, timeout: float) -> None:
        os.kill(state.pid, signal.SIGTERM)
        if not wait_gone(state.pid, timeout, step=0.1):
            os.kill(state.pid, signal.SIGKILL)

    def _purge(self, state: _State) -> None:
        remove_data(Path(state.data_dir) if state.data_dir else self.home / "data")

    def _start(self, state: _State | None, timeout: float) -> ClickHouseServerInfo:
        command = find_clickhouse()
        run_as = unprivileged_user("clickhouse", ("clickhouse", "nobody"))
        state = state or _State(secrets.token_urlsafe(24))
        state.http_port, state.native_port = free_port(), free_port()
        while state.native_port == state.http_port:
            state.native_port = free_port()
        digest = hashlib.sha256(state.password.encode()).hexdigest()
        if not state.data_dir or state.run_as != run_as:  # a new server, or another user's
            ram = None if (self.home / "data").exists() and not run_as else self.ram_data_dir()
            disk = private_dir(self.home, "clickhouse") if run_as else self.home
            state.data_dir = str((ram if ram is not None else disk) / "data")
            state.run_as = run_as
        Path(state.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        # what the server writes (logs) and reads (its config) next to its data when it runs
        # as another user, who may not be able to traverse the project's directories
        home = Path(state.data_dir).parent / "run" if run_as else self.home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        users = home / "users.xml"
        fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                USERS.format(user=USER, password_sha256=digest, max_queries=self.max_queries)
            )
        config = home / "config.xml"
        config.write_text(CONFIG.format(home=home, max_queries=self.max_queries, **asdict(state)))
        errlog = home / "server.err.log"
        errlog.unlink(missing_ok=True)
        if run_as:
            own_by(run_as, home, Path(state.data_dir))
        with open(home / "stdout.log", "wb") as out:
            process = subprocess.Popen(
                [*command, f"--config-file={config}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
                user=run_as or None,
                start_new_session=True,  # survives this run: later runs reuse it
            )
        info = self._info(state)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info.ping(timeout=1):
                state.pid = process.pid
                self._write_state(state)
                return info
            if process.poll() is not None:
                break
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
        log = tail(errlog) or tail(home / "stdout.log")
        reason = (
            f"exited with code {process.returncode}"
            if process.returncode is not None
            else f"no answer on /ping within {timeout:g}s"
        )
        raise ServerStartError("clickhouse", f"{' '.join(command)} {reason}", log)


def server_info_from(settings: Any) -> ClickHouseServerInfo:
    """The external server of the settings (TEST_CLICKHOUSE_*), checked to answer."""
    external = settings.clickhouse
    info = ClickHouseServerInfo(
        external.host,
        external.http_port,
        external.native_port,
        external.user,
        external.password,
        source=settings.source("clickhouse"),
    )
    info.query("SELECT 1", timeout=settings.connect_timeout)
    return info
