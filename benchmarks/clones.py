"""Wall time per database-level test by the size of its template: copying against cloning.

    .venv/bin/python -m benchmarks.clones [--sizes 0,8,200,1024] [--tests 10,60] [--repeat 3]

For each copy method, a throwaway PostgreSQL 18 of its own (the `[server]` extra's wheel):
`copy`, `server_reflink = "off"` (data in RAM on tmpfs, file copies); `auto`, the default
(as root: data on tmpfs too, and an XFS image in RAM as the tablespace of a template's
tables and indexes of 1 MB and more, cloned there by reflink). For each template size (a
table of that many MB, built from SQL files, `postgres_sql`), a project of tiny database-
level tests (a fresh clone each, a row inserted and counted) run by `pytest` in a
subprocess: once to build the template, then with the two test counts, `--repeat` rounds,
the two servers in turn (the machine's load drifts alike for both). Two figures, each the
median over the rounds: the median test's whole protocol (setup, call, teardown) in the
longer run, and the marginal wall time per test, (T(many) - T(few)) / (many - few), what one
more test costs with process start and template build aside (noisier: a run's fixed costs
vary). Numbers are wall-clock on whatever machine runs this: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.speed import TIMER  # each test's protocol timed, written at the end

ROOT = Path(__file__).resolve().parents[1]
ROW_BYTES = 170  # on disk, a row of the table below (id, a 132-byte text), page overhead in

TEST = """
import os
import pytest
from sqlalchemy import text


@pytest.mark.parametrize("i", range(int(os.environ["BENCH_TESTS"])))
def test_tiny(isolated_postgres_sync, i):
    session, _ = isolated_postgres_sync
    session.execute(text("INSERT INTO tiny (email) VALUES (:e)"), {"e": f"u{i}@x"})
    session.commit()
    assert session.execute(text("SELECT count(*) FROM tiny")).scalar() == 1
"""


def project(base: Path, mib: int, cache: Path, reflink: str) -> Path:
    path = base / f"{reflink}_{mib}"
    path.mkdir()
    rows = (mib << 20) // ROW_BYTES
    sql = "CREATE TABLE tiny (id serial PRIMARY KEY, email text);\n"
    if rows:
        sql += (
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) || repeat('x', 100) AS payload "
            f"FROM generate_series(1, {rows}) AS g;\n"
        )
    (path / "template.sql").write_text(sql)
    (path / "pyproject.toml").write_text(
        textwrap.dedent(f"""
            [tool.netra_isolation]
            cache_dir = "{cache}"
            postgres_sql = ["template.sql"]
            server_reflink = "{reflink}"
            prefix = "nibench"
            """)
    )
    (path / "test_tiny.py").write_text(TEST)
    (path / "conftest.py").write_text(TIMER)
    return path


def run(path: Path, tests: int, env: dict[str, str]) -> tuple[float, float]:
    """One `pytest` run of `tests` tests: (its wall seconds, the median test's seconds)."""
    out = path / "times.json"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=path,
        env=env | {"BENCH_TESTS": str(tests), "BENCH_OUT": str(out)},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{path.name}: pytest failed\n{done.stdout[-3000:]}\n{done.stderr}")
    return wall, statistics.median(json.loads(out.read_text())["per_test_s"])


def size_of_template(path: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "netra_isolation.cli", "servers", "status"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().split(", ", 1)[-1].split(" (state")[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,8,200,1024", help="template sizes, MB")
    parser.add_argument("--tests", default="10,60", help="the two test counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    few, many = (int(n) for n in args.tests.split(","))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NETRA_"))}
    env["PYTHONPATH"] = str(ROOT)
    modes = {"off": "copy", "auto": "auto"}
    marginal: dict[tuple[str, int], list[float]] = {(m, s): [] for m in modes for s in sizes}
    median: dict[tuple[str, int], list[float]] = {(m, s): [] for m in modes for s in sizes}
    said: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="netra-bench-clones-") as tmp:
        base = Path(tmp)
        projects = {
            (m, mib): project(base, mib, base / f"cache_{m}", m) for m in modes for mib in sizes
        }
        try:
            for (mode, _), path in projects.items():
                run(path, 1, env)  # builds the template (and starts the server)
                said[mode] = size_of_template(path, env)
            # the two servers in turn, round after round: the machine's load drifts alike
            for _ in range(args.repeat):
                for mib in sizes:
                    for mode in modes:
                        path = projects[mode, mib]
                        (short, _), (long, each) = run(path, few, env), run(path, many, env)
                        marginal[mode, mib].append((long - short) / (many - few))
                        median[mode, mib].append(each)
        finally:
            for mode in modes:
                subprocess.run(
                    [sys.executable, "-m", "netra_isolation.cli", "servers", "down", "--purge"],
                    cwd=projects[mode, sizes[0]],
                    env=env,
                    capture_output=True,
                )
    for mode, name in modes.items():
        print(f"{name}: {said[mode]}")
    for title, figures in (
        (f"the median test's whole protocol (setup, call, teardown), {many} tests", median),
        (f"marginal wall time per test, (T({many}) - T({few})) / {many - few}", marginal),
    ):
        ms = {key: statistics.median(values) * 1000 for key, values in figures.items()}
        print(f"\n{title}; median of {args.repeat} rounds\n")
        print("| template | copy, off (ms/test) | auto (ms/test) | copy / empty | auto / empty |")
        print("|---|---|---|---|---|")
        for mib in sizes:
            copy, auto = ms["off", mib], ms["auto", mib]
            print(
                f"| {mib} MB | {copy:.1f} | {auto:.1f} | {copy / ms['off', sizes[0]]:.2f}x | "
                f"{auto / ms['auto', sizes[0]]:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
