"""The wheel is the library: nothing of this repository's demo application (its models,
factories, scenarios, migrations) goes to users, where a top-level `factories` would collide
with their own."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_library_only(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "netra_isolation",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    assert "netra_isolation/py.typed" in names
    assert not [n for n in names if "/models/" in n or "factories" in n or "migrations/" in n]


def test_importing_the_library_loads_no_clickhouse_driver() -> None:
    """A PostgreSQL-only suite pays nothing for ClickHouse (the plugin's import included)."""
    script = (
        "import sys, netra_isolation, netra_isolation.pytest_plugin\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'clickhouse_sqlalchemy', 'clickhouse_driver', 'asynch', 'chdb'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
