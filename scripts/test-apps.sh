#!/usr/bin/env bash
# The sample applications (tests/e2e/apps) again, each in an environment other than .venv's
# newest releases on Python 3.11, on the servers of the calling run (NETRA_ISOLATION_CACHE_DIR):
#   - .venv-lowest: this project at the LOWEST releases pyproject.toml allows
#     (uv --resolution lowest-direct), running every sample app's suite;
#   - .venv-py313: this project on Python 3.13 at the NEWEST releases, running the same suites
#     and the FastAPI app's. Newest, not lowest: lowest is .venv-lowest's job, and at those pins
#     clickhouse-driver 0.2.9 has no build for 3.13 (compiled from source) and SQLAlchemy 2.0.8
#     runs without its C extensions there, which no one installing on 3.13 gets. Python 3.13
#     is found as python3.13, under pyenv, or named by PYTHON313; without it, one line says so
#     and this step is skipped;
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
HARNESSES=(
  tests/unit/test_compat_versions.py
  tests/e2e/test_stock_alembic_app.py tests/e2e/test_async_app.py
  tests/e2e/test_tenant_app.py tests/e2e/test_clickhouse_app.py
)

# make_env DIR PYTHON STAMP_INPUTS... -- UV_PIP_ARGS...
make_env() {
  local dir=$1 python=$2; shift 2
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  local want
  want=$({ cat "${inputs[@]}"; "$python" -VV; echo "$*"; } | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/.netra-installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    "$UV" venv -q --python "$python" "$dir"
    "$UV" pip install -q --python "$dir/bin/python" "$@"
    echo "$want" > "$dir/.netra-installed"
  fi
}

# The first Python 3.13 that runs: PYTHON313, python3.13, pyenv's (its shim fails when 3.13 is
# not pyenv's global version), the usual prefixes.
python313() {
  local candidate
  for candidate in ${PYTHON313:+"$PYTHON313"} python3.13 \
      "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

versions='import sys, sqlalchemy, pytest, pytest_asyncio, alembic, factory
print(f"Python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}, pytest {pytest.__version__}, pytest-asyncio {pytest_asyncio.__version__}, Alembic {alembic.__version__}, factory-boy {factory.__version__}")'

make_env .venv-lowest "$PYTHON" pyproject.toml -- --resolution lowest-direct \
  -e '.[clickhouse,async]' 'sqlalchemy-utils>=0.41.1'  # the tenant app's own setup uses it
make_env .venv-real-app "$PYTHON" pyproject.toml "$REAL_APP/requirements.txt" -- \
  -r "$REAL_APP/requirements.txt" -e .

echo "test-apps: sample apps at the lowest releases allowed: $(.venv-lowest/bin/python -c "$versions")"
# the harnesses run in .venv-lowest, so the apps' subprocesses (sys.executable) do too
.venv-lowest/bin/pytest -n 2 -q -p no:cacheprovider "${HARNESSES[@]}"

if py313=$(python313); then
  # the FastAPI app's own packages (sqlmodel, fastapi's TestClient: httpx) beside the project's
  make_env .venv-py313 "$py313" pyproject.toml -- -e '.[clickhouse,async]' \
    'sqlalchemy-utils>=0.41.1' 'fastapi>=0.100' 'sqlmodel>=0.0.14' 'httpx>=0.24'
  echo "test-apps: sample apps on Python 3.13 at the newest releases: $(.venv-py313/bin/python -c "$versions")"
  .venv-py313/bin/pytest -n 2 -q -p no:cacheprovider "${HARNESSES[@]}" tests/e2e/test_fastapi_app.py
else
  echo "test-apps: no Python 3.13 here (python3.13, pyenv, or PYTHON313=/path/to/python3.13): the sample apps on 3.13 are skipped"
fi

echo "test-apps: the real app in its pinned environment ($REAL_APP/requirements.txt)"
NETRA_REAL_APP_PYTHON="$PWD/.venv-real-app/bin/python" \
  "$VENV/bin/pytest" -n 2 -q -p no:cacheprovider tests/e2e/test_real_app.py
