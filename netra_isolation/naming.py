"""Run, worker and test ids -> safe, short, unique database names, and ownership tags.

PostgreSQL silently truncates identifiers at 63 bytes and ClickHouse names become file
names, so a name is a readable slug of the test id plus a hash of everything that makes it
unique, always within the limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field, replace

MAX_IDENTIFIER = 63
HASH_LENGTH = 10
_NOT_SAFE = re.compile(r"[^a-z0-9]+")


def host_name() -> str:
    """This host's name in owner tags (NETRA_ISOLATION_HOST stands in for it: CI shards on
    one machine, tests of several hosts)."""
    return os.environ.get("NETRA_ISOLATION_HOST") or socket.gethostname()


_running_test: str | None = None


def running_test() -> str | None:
    """The test (nodeid) this process runs now, as the pytest plugin says; None elsewhere."""
    return _running_test


def set_running_test(nodeid: str | None) -> None:
    global _running_test
    _running_test = nodeid


def short_hash(*parts: str, length: int = HASH_LENGTH) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def slug(text: str, max_length: int = 32) -> str:
    """Lower-case ASCII letters, digits and single underscores; never empty."""
    cleaned = _NOT_SAFE.sub("_", text.lower()).strip("_")
    return cleaned[:max_length].rstrip("_") or "test"


def test_id_from_nodeid(nodeid: str, max_length: int = 32) -> str:
    """`tests/x.py::TestA::test_b[1-2]` -> `test_b_1_2`: the part a reader recognises."""
    name = nodeid.rsplit("::", 1)[-1]
    return slug(name, max_length)


test_id_from_nodeid.__test__ = False  # type: ignore[attr-defined]


def database_name(prefix: str, test_id: str, *unique: str, max_length: int = MAX_IDENTIFIER) -> str:
    """`<prefix>_<test id>_<hash>`; the hash covers the full test id and `unique`."""
    digest = short_hash(test_id, *unique)
    room = max_length - len(prefix) - len(digest) - 2
    return f"{prefix}_{slug(test_id, room)}_{digest}"


def template_name(prefix: str, labels: list[str], fingerprint: str, max_length: int = 50) -> str:
    """`<prefix>_tpl_<labels>_<fingerprint prefix>`."""
    digest = fingerprint[:12]
    room = max_length - len(prefix) - len(digest) - 6
    return f"{prefix}_tpl_{slug('_'.join(labels), room)}_{digest}"


@dataclass(frozen=True)
class Owner:
    """Who created a database: written into it so gc and the isolation check can tell."""

    run: str
    worker: str = "main"
    host: str = field(default_factory=lambda: host_name())
    pid: int = field(default_factory=os.getpid)
    test: str = ""
    created: float = 0.0  # seconds since the epoch; 0: not recorded (older tags)
    kept: bool = False  # a failed test's database kept for the user: no cleanup takes it

    @classmethod
    def new_run(cls, worker: str = "main", run: str | None = None) -> Owner:
        return cls(run=run or uuid.uuid4().hex[:12], worker=worker)

    def for_test(self, nodeid: str) -> Owner:
        return Owner(self.run, self.worker, self.host, self.pid, nodeid, time.time())

    def keeping(self) -> Owner:
        return replace(self, kept=True)

    def tag(self) -> str:
        return json.dumps({"netra_isolation": 1, **asdict(self)}, sort_keys=True)

    @staticmethod
    def parse(tag: str | None) -> Owner | None:
        if not tag:
            return None
        try:
            data = json.loads(tag)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.pop("netra_isolation", None) != 1:
            return None
        try:
            return Owner(**data)
        except TypeError:
            return None
