"""Clone time as a run creates and drops databases: a server with its data on disk against
one in RAM (tmpfs), side by side in one run.

    .venv/bin/python -m benchmarks.churn [--cycles 1500]

Every test of a suite creates a database and drops it again. On a disk filesystem (ext4)
that file churn makes file creation slower and slower (recently freed inodes are passed
over), so clones get slower as a long run goes on; on tmpfs they do not. This is why the
throwaway server keeps its data in RAM when it can (`server_data = "auto"`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from netra_isolation.backends.postgres.server import EphemeralPostgres
from netra_isolation.servers import ram_dir


def clone_ms(admin: object, samples: int = 10) -> float:
    """Median time of `CREATE DATABASE .. TEMPLATE` (each copy dropped again)."""
    times = []
    for i in range(samples):
        started = time.perf_counter()
        admin.execute(f'CREATE DATABASE "probe_{i}" TEMPLATE "tpl"')  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
        admin.execute(f'DROP DATABASE "probe_{i}"')  # type: ignore[attr-defined]
    return statistics.median(times)


def measure(place: str, cycles: int) -> tuple[float, float, float]:
    cache = Path(tempfile.mkdtemp(prefix="netra-churn-"))
    server = EphemeralPostgres(cache, place)
    try:
        with server.ensure_running().connect() as admin:
            admin.execute('CREATE DATABASE "tpl"')
            before = clone_ms(admin)
            started = time.perf_counter()
            for i in range(cycles):  # what a suite of `cycles` tests does
                admin.execute(f'CREATE DATABASE "churn_{i}" TEMPLATE "tpl"')
                admin.execute(f'DROP DATABASE "churn_{i}"')
            rate = cycles / (time.perf_counter() - started)
            return before, clone_ms(admin), rate
    finally:
        server.stop(purge=True)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1500)
    args = parser.parse_args()
    places = ["disk", "ram"] if ram_dir() is not None else ["disk"]
    columns = ["clone ms at start", f"after {args.cycles} tests", "tests/s"]
    print(f"\n{'server data':<14}" + "".join(f"{c:>22}" for c in columns))
    for place in places:
        row = measure(place, args.cycles)
        print(f"{place:<14}" + "".join(f"{v:>22.1f}" for v in row))
    if len(places) == 1:
        print("(no tmpfs with room at /dev/shm here: RAM not measured)")


if __name__ == "__main__":
    main()
