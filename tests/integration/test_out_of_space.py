"""A throwaway server whose data directory fills up (a tmpfs in RAM, most often) fails the test
that needs room with an error naming the place, what uses it and how to make room, and
leaves nothing half-made. Here the server's data lives on a small tmpfs of the test's own
(`server_data = "disk"` with the temp dir there: a server in RAM is told to move to disk)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netra_isolation import OutOfSpaceError, PostgreSQLTestIsolator, Settings
from netra_isolation.backends.postgres.server import EphemeralPostgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 96 MiB tmpfs, traversable by the unprivileged user the server runs as."""
    place = Path(tempfile.gettempdir()) / f"netra-small-{uuid.uuid4().hex[:8]}"
    place.mkdir(mode=0o755)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m,mode=0755", "tmpfs", str(place)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        place.rmdir()
        pytest.skip(f"mounting a small tmpfs needs root: {done.stderr.strip()}")
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], check=False)
        place.rmdir()


def test_a_full_data_directory_is_named_with_what_fills_it(
    small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(small_tmpfs))  # where the server's data goes
    cache = small_tmpfs / "cache"
    settings = Settings.load(root=ROOT).with_overrides(
        cache_dir=cache, server_data="disk", prefix=f"oos{uuid.uuid4().hex[:6]}", prefetch=0
    )
    isolator = PostgreSQLTestIsolator(settings)
    made: list[str] = []
    try:
        with pytest.raises(OutOfSpaceError) as raised:
            for n in range(60):
                made.append(isolator.create_isolated_database_sync(f"fill{n}", "basic").name)
        message = str(raised.value)
        data = isolator.data_path()
        assert data is not None and str(data).startswith(str(small_tmpfs))
        assert f"ran out of space in {data} (tmpfs, " in message
        assert f"test databases: {len(made)} taking" in message
        assert "Templates of prefix" in message and "gc --templates" in message
        assert "free space on that filesystem" in message  # its data is on disk already
        # nothing half-made: the server holds exactly the clones that were handed out
        assert sorted(db.name for db in isolator.owned()) == sorted(made)
        assert made  # it filled up cloning, after the template was built
    finally:
        isolator.cleanup_all_sync()
        isolator.close()
        EphemeralPostgres(cache, "disk").stop(purge=True)


def test_the_filesystem_of_a_path_is_its_longest_mount_point(small_tmpfs: Path) -> None:
    from netra_isolation.servers import filesystem_of

    assert filesystem_of(small_tmpfs / "not-yet") == "tmpfs"
    assert filesystem_of(Path("/proc/self")) == "proc"
    assert os.path.ismount(small_tmpfs)
