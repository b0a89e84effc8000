"""Reflinks: whether a directory's filesystem clones files by sharing their blocks, and an XFS
image in RAM that does, for a server whose data would otherwise be on tmpfs (which does not).

A server whose data directory takes reflinks copies a database in a time that does not grow
with its size (PostgreSQL 18: `file_copy_method = clone`). Whether it does is tried, never
assumed from the filesystem's name: `probe` clones a small file there (the FICLONE ioctl, what
`cp --reflink=always` does) and says why not when it cannot.

`XfsImage` is a sparse file on /dev/shm, formatted XFS with reflinks and loop-mounted with
`discard`, so that what the server deletes is given back to RAM (the throwaway PostgreSQL's
tablespace for large templates). Only root can mount it; each
reason it cannot be made (not root, no mkfs.xfs, no free loop device, too little room, a mount
refused) is returned as one line, and nothing of a failed attempt is left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from netra_isolation.servers import filesystem_of

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
# tools looked for on PATH and, as root's PATH has them, in the sbin directories
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")
# An image takes this share of the tmpfs's free space (a sparse file: RAM is used only for
# what the server writes, and given back by `discard` when it deletes), so that the image
# fills, and the server says "No space left on device", before the tmpfs under it does.
IMAGE_SHARE = 0.75
IMAGE_MIN = 1 << 30  # smaller than this, an image is not worth making (XFS itself needs 300 MB)


def probe(directory: Path) -> str | None:
    """None if `directory`'s filesystem clones a file by reflink; else why not, in a few
    words ("tmpfs takes no reflinks (Operation not supported)")."""
    if not sys.platform.startswith("linux"):
        return f"reflinks are tried on Linux only, not {sys.platform}"
    source = directory / f".netra-reflink-probe-{os.getpid()}"
    clone = source.with_name(source.name + "-clone")
    try:
        source.write_bytes(b"\0" * 65536)
        with source.open("rb") as src, clone.open("wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
    except OSError as exc:
        why = exc.strerror or str(exc)
        return f"{filesystem_of(directory)} at {directory} takes no reflinks ({why})"
    finally:
        source.unlink(missing_ok=True)
        clone.unlink(missing_ok=True)
    return None


def tool(name: str) -> str | None:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=os.pathsep.join([path, *SBIN]))


class XfsImage:
    """`image`, a sparse XFS file with reflinks, mounted at `point` (a directory beside it)."""

    def __init__(self, image: Path, point: Path) -> None:
        self.image = image
        self.point = point

    @classmethod
    def of(cls, image: Path) -> XfsImage:
        """`image` (`name.xfs`), mounted at the directory beside it (`name`)."""
        return cls(image, image.with_suffix(""))

    def mounted(self) -> bool:
        return os.path.ismount(self.point)

    def ensure(self, owner: str = "") -> str | None:
        """Mount the image at `point` (made first, if there is none) and hand its top
        directory to `owner`: None once that is done; else why it could not be, with nothing
        left of the attempt (no image, no mount)."""
        why = self._mounted() or self._own(owner)
        if why is not None:
            self.remove()
        return why

    def _mounted(self) -> str | None:
        if self.mounted():
            return None
        if not sys.platform.startswith("linux"):
            return f"an XFS image needs Linux, not {sys.platform}"
        if os.geteuid() != 0:
            return "not root: only root can mount an XFS image"
        if self.image.exists() and self._mount() is None:
            return None  # the server's, stopped by `servers down`: its data is still there
        self.remove()
        mkfs = tool("mkfs.xfs")
        if mkfs is None:
            return "mkfs.xfs not found (Debian/Ubuntu: apt-get install xfsprogs)"
        try:
            self.image.parent.mkdir(parents=True, exist_ok=True)
            stat = os.statvfs(self.image.parent)
        except OSError as exc:
            return f"{self.image.parent}: {exc.strerror or exc}"
        free = stat.f_bavail * stat.f_frsize
        size = int(free * IMAGE_SHARE) >> 20 << 20
        if size < IMAGE_MIN:
            return (
                f"{self.image.parent} has {free >> 20} MiB free: an image of "
                f"{IMAGE_SHARE:.0%} of it would be under {IMAGE_MIN >> 20} MiB"
            )
        return self._make(mkfs, size) or self._mount()

    def _own(self, owner: str) -> str | None:
        """The mounted filesystem's top directory is the server user's alone (0700), as the
        directory it replaces was."""
        try:
            if owner:
                entry = pwd.getpwnam(owner)
                os.chown(self.point, entry.pw_uid, entry.pw_gid)
            self.point.chmod(0o700)
        except (OSError, KeyError) as exc:
            return f"cannot hand {self.point} to {owner or 'its user'} ({exc})"
        return None

    def _make(self, mkfs: str, size: int) -> str | None:
        try:
            fd = os.open(self.image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        except OSError as exc:
            return f"cannot make {self.image} ({exc.strerror or exc})"
        done = _run([mkfs, "-q", "-m", "reflink=1", str(self.image)])
        return None if done is None else f"mkfs.xfs failed: {done}"

    def _mount(self) -> str | None:
        mount = tool("mount")
        if mount is None:
            return "mount not found"
        try:
            self.point.mkdir(parents=True, exist_ok=True)
            if any(self.point.iterdir()):  # written there while it was not mounted
                shutil.rmtree(self.point)
                self.point.mkdir()
        except OSError as exc:
            return f"cannot make the mount point {self.point} ({exc.strerror or exc})"
        done = _run([mount, "-t", "xfs", "-o", "loop,discard", str(self.image), str(self.point)])
        return None if done is None else f"mount failed: {done}"

    def unmount(self) -> None:
        """Unmount it (its loop device goes with it); its data stays in the image."""
        if not self.mounted():
            return
        umount = tool("umount") or "umount"
        if _run([umount, str(self.point)]) is not None:
            _run([umount, "-l", str(self.point)])  # busy: detached now, freed when let go

    def remove(self) -> None:
        """Unmount it and delete it, with its data."""
        self.unmount()
        with contextlib.suppress(OSError):
            self.image.unlink(missing_ok=True)


def _run(argv: list[str]) -> str | None:
    """None when `argv` succeeds, else the first line it said (or its exit status)."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    said = (done.stderr or done.stdout).strip().splitlines()
    return said[0] if said else f"exit status {done.returncode}"
