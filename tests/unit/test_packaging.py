"""What users install: the wheel is the library (nothing of this repository's demo
application, its models, factories, scenarios, migrations, goes to users, where a top-level
`factories` would collide with their own), and installing it beside an application's pinned
releases keeps them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
PINS = {"pytest": "7.4.4", "sqlalchemy": "2.0.8"}  # an application's, as issue 17's was


def sh(*command: str | Path) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of what it is made of (builds write beside their sources,
    and other tests build from this checkout at the same time)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(
        ROOT / "netra_isolation",
        source / "netra_isolation",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp_path_factory.mktemp("wheel")
    sh(UV, "build", "-q", "--wheel", "--out-dir", out, source)
    [built] = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_library_only(wheel: Path) -> None:
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


def test_installing_it_beside_pinned_releases_keeps_them(wheel: Path, tmp_path: Path) -> None:
    """An application whose environment pins pytest 7.4.4 and SQLAlchemy 2.0.8 installs the
    tool afterwards: both pins stay. pytest-asyncio does not come along (since 0.24 it needs
    pytest 8.2, and installers upgraded pytest to bring it). uv here, for speed; pip keeps
    them too (its resolver upgrades nothing that satisfies the requirements either)."""
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    sh(UV, "venv", "-q", "--python", sys.executable, venv)
    sh(UV, "pip", "install", "-q", "--python", python, *(f"{n}=={v}" for n, v in PINS.items()))
    sh(UV, "pip", "install", "-q", "--python", python, wheel)
    script = (
        "import importlib.metadata as m\n"
        "for name in ('pytest', 'sqlalchemy', 'pytest-asyncio', 'netra-isolation'):\n"
        "    try:\n"
        "        print(name, m.version(name))\n"
        "    except m.PackageNotFoundError:\n"
        "        print(name, '-')\n"
    )
    installed = dict(line.split() for line in sh(python, "-c", script).splitlines())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert installed == PINS | {"pytest-asyncio": "-", "netra-isolation": version}
