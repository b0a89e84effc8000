"""The speed benchmark (`make bench`) at a tiny size, so it cannot rot: it runs, prints its one
table with every row, and every figure is a positive number. Times are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.speed import LABELS

ROOT = Path(__file__).resolve().parents[2]


def test_speed_table_prints_every_row(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    tiny = ["--tests", "3", "--one-test-runs", "1", "--seed-scale", "1", "--restores", "2"]
    tiny += ["--marginal-runs", "1", "--marginal-tests", "2", "12"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", *tiny, "--no-warmup", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    printed = done.stdout.splitlines()
    expected = [label.format(scale=1) for label in LABELS.values()]
    assert [row["label"] for row in rows] == expected
    marginal = {LABELS["marginal_hand"], LABELS["marginal_tx"]}
    assert "marginal: whole runs of 2 and 12 tests x 1" in done.stdout
    assert "PostgreSQL " in done.stdout  # which server it ran on
    for number, row in enumerate(rows, 1):
        # a marginal figure is the difference of two whole runs: at this size, noise
        if row["label"] not in marginal:
            assert row["value"] > 0, row
        line = next(line for line in printed if line.startswith(f"{number:>2} {row['label']}"))
        if row["target"]:  # judged against the target, whichever way it went
            assert row["met"] in (True, False), row
            assert line.rstrip().endswith(("yes", "NO")), line
        if row["versus"]:
            assert row["ratio"] is not None, row
            assert f"#{expected.index(row['versus']) + 1}" in line, line


def test_only_seeding_prints_the_seeding_rows(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    tiny = ["--only-seeding", "--seed-scale", "1", "--seed-runs", "1", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    assert [row["label"] for row in rows] == [
        LABELS[key].format(scale=1) for key in ("seed", "seed_ch")
    ]
    assert all(row["value"] > 0 and row["met"] in (True, False) for row in rows), rows


def test_only_marginal_prints_the_marginal_rows(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    tiny = ["--only-marginal", "--marginal-runs", "1", "--marginal-tests", "1", "3"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", *tiny, "--no-warmup", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    assert [row["label"] for row in rows] == [LABELS["marginal_hand"], LABELS["marginal_tx"]]
    assert rows[1]["versus"] == rows[0]["label"] and rows[1]["met"] in (True, False), rows
    assert "marginal: whole runs of 1 and 3 tests x 1" in done.stdout
    assert "(90% bootstrap)" in done.stdout
    assert "PostgreSQL " in done.stdout
