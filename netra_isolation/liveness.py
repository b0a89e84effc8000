"""Whether the run (and worker) that owns a database is still alive, seen from any host.

Each process of a run holds, for its whole life, a session-level advisory lock on the
PostgreSQL server, keyed by its run and worker (shared, so the managers of one process's
further databases hold it too). The server releases it when the process's connection ends,
whatever ended it (SIGKILL, a crash, a lost host). Anyone can then tell a live owner from a
dead one by trying to take that key exclusively: the try fails while any holder lives. No
process table, no host name, no pid is needed, so CI shards on one external server and
recycled pids are told apart correctly.

ClickHouse has no session locks: there a process renews a lease row while it runs
(`ClickHouseLease`), and is over once its last row says so or has not been renewed for
`lease_seconds`. Where a server holds no lease table yet, a process on this host is alive
while its pid is, and owners on other hosts are left alone.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from netra_isolation.naming import Owner, host_name


def advisory_key(text: str, size: int = 8) -> int:
    """A PostgreSQL advisory-lock key for `text`: a signed number of `size` bytes (8: the
    one-key form; 4: one half of the two-key form)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big", signed=True)


def lock_key(owner: Owner) -> int:
    """The advisory-lock key of a run's worker: a signed 64-bit number."""
    return advisory_key(f"netra-isolation run\0{owner.run}\0{owner.worker}")


USE_CLASS = 0x6E69  # "ni": template uses are two-int keys, a key space apart from runs'


def use_key(template: str) -> tuple[int, int]:
    """The advisory-lock key of using the template `template` (two signed 32-bit numbers)."""
    return USE_CLASS, advisory_key(f"netra-isolation template\0{template}", 4)


class Lease:
    """This process's proof of life on one PostgreSQL server: a connection of its own holding
    the run's key (shared) until the process ends or `release()`; and the keys of the
    templates the process uses (shared), so that none is pruned under it."""

    def __init__(self, connect: Any, owner: Owner) -> None:
        self._conn = connect()
        self._conn.execute("SELECT pg_advisory_lock_shared(%s)", (lock_key(owner),))
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def use_template(self, template: str) -> None:
        """Hold `template`'s use key while this process lives (waits while it is pruned)."""
        with self._lock:
            if template not in self._held and not self._conn.closed:
                self._conn.execute("SELECT pg_advisory_lock_shared(%s, %s)", use_key(template))
                self._held.add(template)

    def release(self) -> None:
        with self._lock:
            if not self._conn.closed:
                self._conn.close()  # the server drops the lock with the session


def owner_alive(execute: Any, owner: Owner) -> bool:
    """True while the process that `owner` names holds its key on this server: the exclusive
    try fails. `execute(sql, params)` runs on an autocommit connection and returns rows."""
    key = lock_key(owner)
    [(taken,)] = execute("SELECT pg_try_advisory_lock(%s)", (key,))
    if taken:
        execute("SELECT pg_advisory_unlock(%s)", (key,))
    return not taken


@contextmanager
def template_unused(execute: Any, template: str) -> Iterator[bool]:
    """Whether no live process uses `template`: its use key taken exclusively, held for the
    block (a process about to use it waits, then finds it gone and builds it anew)."""
    key = use_key(template)
    [(taken,)] = execute("SELECT pg_try_advisory_lock(%s, %s)", key)
    try:
        yield bool(taken)
    finally:
        if taken:
            execute("SELECT pg_advisory_unlock(%s, %s)", key)


def process_alive_here(owner: Owner) -> bool | None:
    """Without a lease to ask: on this host, whether its pid lives; elsewhere, unknown."""
    if owner.host != host_name():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The lease table lives in a database of its own, never one of the prefix.
LEASE_DATABASE = "netra_isolation_leases"
LEASE_TABLE = "runs"
USES_TABLE = "template_uses"


class ClickHouseLease:
    """This process's lease on one ClickHouse server, renewed in a daemon thread."""

    def __init__(self, run_sql: Any, insert: Any, owner: Owner, lease_seconds: float) -> None:
        """`run_sql(sql)` runs a statement; `insert(table, columns, rows)` inserts rows (the
        native protocol takes no inline VALUES)."""
        self._insert = insert
        self._key = str(lock_key(owner))
        self._stop = threading.Event()
        run_sql(f"CREATE DATABASE IF NOT EXISTS {LEASE_DATABASE}")
        run_sql(
            f"CREATE TABLE IF NOT EXISTS {LEASE_DATABASE}.{LEASE_TABLE} (key String, "
            "alive UInt8, at DateTime, seq UInt64) ENGINE = MergeTree ORDER BY (key, seq)"
        )
        run_sql(
            f"CREATE TABLE IF NOT EXISTS {LEASE_DATABASE}.{USES_TABLE} (template String, "
            "key String, at DateTime) ENGINE = MergeTree ORDER BY (template, key)"
        )
        self._used: set[str] = set()
        trim(run_sql)
        self._renew(1)
        self._thread = threading.Thread(
            target=self._keep, args=(lease_seconds / 3,), name="netra-lease", daemon=True
        )
        self._thread.start()

    def use_template(self, template: str) -> None:
        """Record that this process uses `template`: not pruned while its lease lives."""
        if template not in self._used:
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            columns = ["template", "key", "at"]
            self._insert(f"{LEASE_DATABASE}.{USES_TABLE}", columns, [[template, self._key, now]])
            self._used.add(template)

    def _renew(self, alive: int) -> None:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        row = [self._key, alive, now, time.time_ns()]  # seq: the last row wins, within a second
        self._insert(f"{LEASE_DATABASE}.{LEASE_TABLE}", ["key", "alive", "at", "seq"], [row])

    def _keep(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self._renew(1)
            except Exception:  # the server went away: the lease lapses, as it should
                return

    def release(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._renew(0)


KEEP_ROWS_SECONDS = 86400  # lease rows older than this say nothing: a live run renews its own
KEEP_USES_SECONDS = 7 * 86400  # a use recorded this long ago: no run lasts that long


def trim(run_sql: Any) -> None:
    """Delete the lease rows nobody needs any more (a run's last row stays recent while it
    lives), so the lease tables do not grow run after run; a mutation only when there are."""
    for table, seconds in ((LEASE_TABLE, KEEP_ROWS_SECONDS), (USES_TABLE, KEEP_USES_SECONDS)):
        old = f"at < now() - {seconds}"
        if int(run_sql(f"SELECT count() FROM {LEASE_DATABASE}.{table} WHERE {old}")[0][0]):
            run_sql(f"ALTER TABLE {LEASE_DATABASE}.{table} DELETE WHERE {old}")


def clickhouse_owner_alive(run_sql: Any, owner: Owner, lease_seconds: float) -> bool | None:
    """The owner's last lease row: alive if it says so and is recent; None without a lease
    table (nothing on this server proves life: ask the process table)."""
    exists = run_sql(
        "SELECT count() FROM system.tables "
        f"WHERE database = '{LEASE_DATABASE}' AND name = '{LEASE_TABLE}'"
    )
    if not int(exists[0][0]):
        return None
    rows = run_sql(
        f"SELECT argMax(alive, seq), now() - max(at) FROM {LEASE_DATABASE}.{LEASE_TABLE} "
        f"WHERE key = '{lock_key(owner)}'"
    )
    alive, age = int(rows[0][0]), float(rows[0][1])
    return bool(alive) and age <= lease_seconds


def clickhouse_template_used(run_sql: Any, template: str, lease_seconds: float) -> bool:
    """Whether a process whose lease lives has recorded a use of `template`."""
    quoted = template.replace("\\", "\\\\").replace("'", "\\'")
    rows = run_sql(
        f"SELECT count() FROM (SELECT key, argMax(alive, seq) AS last_alive, max(at) AS last_at "
        f"FROM {LEASE_DATABASE}.{LEASE_TABLE} WHERE key IN (SELECT key FROM "
        f"{LEASE_DATABASE}.{USES_TABLE} WHERE template = '{quoted}') GROUP BY key) "
        f"WHERE last_alive = 1 AND now() - last_at <= {float(lease_seconds)}"
    )
    return bool(int(rows[0][0]))
