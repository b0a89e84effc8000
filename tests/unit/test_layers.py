"""The package's one-way imports are a contract import-linter enforces in `make test`
(`[tool.importlinter]` in pyproject.toml); here it is shown to catch an import that goes the
wrong way, on a copy of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def layers_contract() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return dict(contract)


def lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    contract = layers_contract()
    layers = "\n".join(f"    {layer}" for layer in contract["layers"])  # type: ignore[attr-defined]
    (package_parent / ".importlinter").write_text(
        "[importlinter]\nroot_package = netra_isolation\nexclude_type_checking_imports = True\n\n"
        "[importlinter:contract:layers]\n"
        f"name = {contract['name']}\ntype = layers\ncontainers = netra_isolation\n"
        f"layers =\n{layers}\n"
    )
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", ".importlinter", "--no-cache"],
        cwd=package_parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_contract_holds_and_catches_an_upward_import(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "netra_isolation",
        tmp_path / "netra_isolation",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    kept = lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # settings, at the bottom, importing the plugin at the top
    settings = tmp_path / "netra_isolation" / "settings.py"
    settings.write_text(settings.read_text() + "\nimport netra_isolation.pytest_plugin\n")
    broken = lint(tmp_path)
    assert broken.returncode != 0
    assert (
        "netra_isolation.settings is not allowed to import netra_isolation.pytest_plugin"
        in broken.stdout
    )
