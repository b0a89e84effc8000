"""Throwaway local servers: what PostgreSQL's and ClickHouse's have in common.

A server's state (ports, password, pid) lives in a 0600 JSON file under the project cache
directory; a file lock makes sure that of several processes starting at once (xdist workers)
one starts the server and the others reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Generic, TypeVar

from filelock import FileLock

from netra_isolation.errors import ServerStartError
from netra_isolation.settings import SERVER_DATA

StateT = TypeVar("StateT")
InfoT = TypeVar("InfoT")

RAM_DIR = Path("/dev/shm")
RAM_MIN_FREE = 1 << 30  # bytes a tmpfs must have free to hold a server's data
OWNER_FILE = ".owner"  # in a server's directory in RAM: its project cache, its process


def ram_dir(
    path: Path = RAM_DIR, min_free: int = RAM_MIN_FREE, mounts: Path = Path("/proc/mounts")
) -> Path | None:
    """`path` if it is a writable tmpfs (by the mount table `mounts`) with `min_free` bytes
    free, else None.

    Test servers create and drop a database per test; on a disk filesystem that file churn
    slows file creation more and more (ext4 passes over recently freed inodes: a clone that
    takes 15 ms on a fresh server takes 90 ms after 1500 create/drop cycles), on tmpfs it
    stays flat, and nothing of it needs to survive a reboot.
    """
    try:
        table = mounts.read_text().splitlines()
        stat = os.statvfs(path)
    except OSError:
        return None
    tmpfs = any(line.split()[1:3] == [str(path), "tmpfs"] for line in table)
    if not tmpfs or not os.access(path, os.W_OK) or stat.f_bavail * stat.f_frsize < min_free:
        return None
    return path


def home_of(cache_dir: Path, name: str) -> Path:
    """Where the throwaway server `name` of the project whose cache is `cache_dir` keeps its
    state."""
    return (cache_dir / name).resolve()


def running_summary(cache_dir: Path, name: str) -> str:
    """`EphemeralServer.describe`'s words for a running server, read from its state file
    alone (no backend imported, nothing started; for the report header); "" if none."""
    try:
        state = json.loads((home_of(cache_dir, name) / "state.json").read_text())
        pid = int(state.get("pid") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return ""
    return str(state.get("summary") or "") if pid and pid_alive(pid) else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True for a running process, False for none or a zombie (our own exited child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, timeout: float, step: float = 0.05) -> bool:
    """Wait until the process `pid` has ended, at most `timeout` seconds; True if it has."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(step)
    return not pid_alive(pid)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def unprivileged_user(backend: str, names: tuple[str, ...]) -> str:
    """As root, the first of `names` that exists (a server never runs as root); else ""."""
    if os.geteuid() != 0:
        return ""
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerStartError(backend, f"running as root and none of {', '.join(names)} exists")


def own_by(user: str, *paths: Path) -> None:
    """Hand `paths` (and everything below them) to `user`."""
    entry = pwd.getpwnam(user)
    for top in paths:
        for path in [top, *top.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def private_dir(home: Path, name: str) -> Path:
    """Where a server started by root keeps what its unprivileged user writes, outside the
    project (whose directories that user may not be able to traverse)."""
    key = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"netra-isolation-{key}" / name


def sweep_orphans(ram: Path = RAM_DIR) -> list[Path]:
    """Remove the directories in RAM of servers whose project cache is gone (deleted, or a
    temporary one whose run was killed before it could stop them) and whose process has
    ended, with their XFS images' mounts: else they would hold RAM, and loop devices, of
    which a machine has few, until a reboot. The removed directories."""
    from netra_isolation.servers.reflink import XfsImage  # reflink imports this module

    removed = []
    for top in ram.glob("netra-isolation-*"):
        if not _orphaned(top):
            continue
        for image in top.glob("*.xfs"):
            XfsImage.of(image).remove()
        if not any(p.is_mount() for p in top.iterdir()):
            shutil.rmtree(top, ignore_errors=True)
            removed.append(top)
    return removed


def _orphaned(top: Path) -> bool:
    """Whether `top`'s mark names a project cache with no server state and a process that
    has ended; False when it is not marked (yet), or not this user's to tell."""
    try:
        owner = json.loads((top / OWNER_FILE).read_text())
        home, pid = Path(owner["home"]), int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        (home / "state.json").lstat()
        return False  # its project's: `servers down --purge` there removes it
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return not (pid and pid_alive(pid))


def remove_data(path: Path) -> None:
    """Delete a server's data directory; when it lives in a `netra-isolation-*` directory of
    its own in RAM or the temp dir (which holds its log too), delete that whole directory."""
    homes = (RAM_DIR, Path(tempfile.gettempdir()))
    own = [p for p in path.parents if p.parent in homes and p.name.startswith("netra-isolation-")]
    shutil.rmtree(own[0] if own else path, ignore_errors=True)


class EphemeralServer(Generic[StateT, InfoT]):
    """Reuse-or-start, status and stop, around a backend's `_start`, `_answers`, `_info`,
    `_terminate` and `_purge`."""

    name: str
    state_type: type[Any]

    def __init__(self, cache_dir: Path, data: str = "auto") -> None:
        self.home = home_of(cache_dir, self.name)
        self.state_path = self.home / "state.json"
        self._lock = FileLock(str(self.home / ".lock"), timeout=120)
        self.data = data  # where a new server keeps its data: auto (RAM if possible) | ram | disk
        # what the last start or reuse has to tell, a line each (a fallback and why): the
        # isolator prints them on the run's terminal, `servers up` on its own
        self.notes: list[str] = []
        self.started = False  # whether the last ensure_running started it

    def ram_data_dir(self) -> Path | None:
        """This project's data directory in RAM for a new server, or None for disk."""
        if self.data not in SERVER_DATA:
            raise ServerStartError(
                self.name, f"server_data = {self.data!r}; use one of {', '.join(SERVER_DATA)}"
            )
        ram = ram_dir() if self.data != "disk" else None
        if ram is None and self.data == "ram":
            raise ServerStartError(
                self.name,
                f"server_data = 'ram' needs {RAM_DIR} to be a tmpfs with "
                f"{RAM_MIN_FREE >> 30} GiB free; set server_data to 'auto' or 'disk'",
            )
        return None if ram is None else self.ram_home(ram)

    def ram_home(self, ram: Path = RAM_DIR) -> Path:
        """Where in RAM this project's server keeps its data, when it does."""
        key = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return ram / f"netra-isolation-{key}" / self.name

    # -- backend hooks ----------------------------------------------------------------------
    def _start(self, state: StateT | None, timeout: float) -> InfoT:
        raise NotImplementedError

    def _answers(self, state: StateT) -> bool:
        raise NotImplementedError

    def _info(self, state: StateT) -> InfoT:
        raise NotImplementedError

    def _terminate(self, state: StateT, timeout: float) -> None:
        raise NotImplementedError

    def _purge(self, state: StateT) -> None:
        raise NotImplementedError

    def _release(self, state: StateT) -> None:
        """What a stopped server holds besides its process (PostgreSQL: its XFS image's mount),
        let go of at every stop, whether the server was running or not."""

    def _reused(self, state: StateT) -> None:
        """A running server is reused: a backend may add to `notes` (say, that it is not the
        one the settings now choose)."""

    def describe(self) -> str:
        """What the running server is, in a few words ("PostgreSQL 18.1 (...), copy method:
        ..."), for `servers status`; "" when not running or nothing to say."""
        state = self._read_state()
        if state is None or not self._alive(state):
            return ""
        return str(getattr(state, "summary", "") or "")

    # -- shared ----------------------------------------------------------------------------
    def data_path(self) -> Path | None:
        """Where the server keeps its data (None: not made yet)."""
        state = self._read_state()
        data_dir = str(getattr(state, "data_dir", "") or "")
        return Path(data_dir) if data_dir else None

    def ensure_running(self, timeout: float = 60.0) -> InfoT:
        """Reuse the running server, or start one; at most one starts across processes."""
        self._make_home()
        with self._lock:
            self.notes, self.started = [], False
            state = self._read_state()
            if state is not None and self._alive(state):
                self._reused(state)
                return self._info(state)
            sweep_orphans()
            info = self._start(state, timeout)
            self.started = True
            self._mark_ram()
            return info

    def status(self) -> InfoT | None:
        state = self._read_state()
        return self._info(state) if state is not None and self._alive(state) else None

    def stop(self, timeout: float = 30.0, purge: bool = False) -> bool:
        """Stop the server (and with `purge`, delete its data); True if it was running."""
        self._make_home()
        with self._lock:
            try:
                state = self._read_state()
            except ServerStartError:
                if not purge:
                    raise
                self.state_path.unlink(missing_ok=True)  # unreadable: afresh next time
                return False
            if state is None:
                return False
            pid = int(getattr(state, "pid", 0))
            was_running = bool(pid and pid_alive(pid))
            if was_running:
                self._terminate(state, timeout)
            self._release(state)
            state.pid = 0  # type: ignore[attr-defined]
            if purge:
                self._purge(state)
                self.state_path.unlink(missing_ok=True)
            else:
                self._write_state(state)
            return was_running

    def _mark_ram(self) -> None:
        """Say, in the server's own directory in RAM, whose it is and which process runs it:
        `sweep_orphans` removes it once both are gone."""
        state = self._read_state()
        data = str(getattr(state, "data_dir", "") or "")
        top = self.ram_home().parent
        if data and Path(data).is_relative_to(top):
            pid = int(getattr(state, "pid", 0))
            (top / OWNER_FILE).write_text(json.dumps({"home": str(self.home), "pid": pid}))

    def _alive(self, state: StateT) -> bool:
        pid = int(getattr(state, "pid", 0))
        return bool(pid and pid_alive(pid) and self._answers(state))

    def _make_home(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.home, prefix=".writable-")  # own name:
            os.close(handle)  # processes starting at once each probe with their own file
            os.unlink(probe)
        except OSError as exc:
            raise ServerStartError(
                self.name,
                f"its state goes under {self.home}, which cannot be written "
                f"({exc.strerror or exc}): set cache_dir (NETRA_ISOLATION_CACHE_DIR, "
                "--netra-cache-dir or [tool.netra_isolation]) to a writable directory",
            ) from None

    def _read_state(self) -> StateT | None:
        try:
            text = self.state_path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unreadable(exc) from None
        try:
            state: StateT = self.state_type(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise self._unreadable(exc) from None
        return state

    def _unreadable(self, exc: BaseException) -> ServerStartError:
        return ServerStartError(
            self.name,
            f"its state file {self.state_path} cannot be read ({exc}); "
            "`netra-isolation servers down --purge` stops it if it runs and starts afresh",
        )

    def _write_state(self, state: StateT) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(state), handle)  # type: ignore[call-overload]
        os.replace(tmp, self.state_path)


def filesystem_of(path: Path, mounts: Path = Path("/proc/mounts")) -> str:
    """The type of the filesystem `path` is on (its longest mount point), e.g. "tmpfs"."""
    try:
        table = [line.split() for line in mounts.read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = ("", "unknown")
    for fields in table:
        if len(fields) > 2:
            point, kind = fields[1], fields[2]
            inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best[0]):
                best = (point, kind)
    return best[1]


def space_of(path: Path) -> str:
    """`path`'s filesystem, its type and free space, as an error says it."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return str(path)
    free, total = stat.f_bavail * stat.f_frsize >> 20, stat.f_blocks * stat.f_frsize >> 20
    return f"{path} ({filesystem_of(path)}, {free} MiB free of {total} MiB)"
