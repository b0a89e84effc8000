#!/usr/bin/env bash
# The sample applications (tests/e2e/apps) again, each in an environment other than .venv's
# newest releases, on the servers of the calling run (NETRA_ISOLATION_CACHE_DIR):
#   - .venv-lowest: this project at the LOWEST releases pyproject.toml allows
#     (uv --resolution lowest-direct), running every sample app's suite;
#   - .venv-real-app: the real app's own pins (tests/e2e/apps/real_app/requirements.txt:
#     SQLAlchemy 2.0.8, pytest 7.4.4) beside this project, running the real app's suite.
# Each environment is remade only when what it is installed from changes, as bootstrap.sh
# does for .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
UV="$VENV/bin/uv"
PYTHON=${PYTHON:-python3}
REAL_APP=tests/e2e/apps/real_app

# make_env DIR STAMP_INPUTS... -- UV_PIP_ARGS...
make_env() {
  local dir=$1; shift
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  local want
  want=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/.netra-installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    "$UV" venv -q --python "$PYTHON" "$dir"
    "$UV" pip install -q --python "$dir/bin/python" "$@"
    echo "$want" > "$dir/.netra-installed"
  fi
}

make_env .venv-lowest pyproject.toml -- --resolution lowest-direct -e '.[clickhouse,async]' \
  'sqlalchemy-utils>=0.41.1'  # the tenant app's own setup uses it
make_env .venv-real-app pyproject.toml "$REAL_APP/requirements.txt" -- \
  -r "$REAL_APP/requirements.txt" -e .

echo "test-apps: sample apps at the lowest releases allowed:" \
  "$(.venv-lowest/bin/python -c 'import sqlalchemy, pytest, pytest_asyncio, alembic, factory
print(f"SQLAlchemy {sqlalchemy.__version__}, pytest {pytest.__version__}, pytest-asyncio {pytest_asyncio.__version__}, Alembic {alembic.__version__}, factory-boy {factory.__version__}")')"
# the harnesses run in .venv-lowest, so the apps' subprocesses (sys.executable) do too
.venv-lowest/bin/pytest -n 2 -q -p no:cacheprovider \
  tests/unit/test_compat_versions.py \
  tests/e2e/test_stock_alembic_app.py tests/e2e/test_async_app.py \
  tests/e2e/test_tenant_app.py tests/e2e/test_clickhouse_app.py

echo "test-apps: the real app in its pinned environment ($REAL_APP/requirements.txt)"
NETRA_REAL_APP_PYTHON="$PWD/.venv-real-app/bin/python" \
  "$VENV/bin/pytest" -n 2 -q -p no:cacheprovider tests/e2e/test_real_app.py
