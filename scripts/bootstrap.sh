#!/usr/bin/env bash
# Installs what the demo and the tests need; a second run skips what is done.
#   - PostgreSQL server binaries (apt, when missing and running as root)
#   - ClickHouse server (apt, when missing and running as root)
#   - xfsprogs (apt, when missing and running as root): the XFS image in RAM that gives the
#     throwaway PostgreSQL 18 reflink clones (without it, file copies; tests of it are skipped)
#   - .venv with `pip install -e .[dev]`, redone only when pyproject.toml changes
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_ch() { command -v clickhouse-server >/dev/null 2>&1 || command -v clickhouse >/dev/null 2>&1; }
have_xfs() { PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.xfs >/dev/null 2>&1; }

missing=()
have_pg || missing+=(postgresql)
have_ch || missing+=(clickhouse-server clickhouse-client)
# optional: only root mounts an XFS image, so only root installs it
if ! have_xfs && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing+=(xfsprogs)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing ${missing[*]}; install them with your package manager" >&2
    echo "           (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

stamp="$VENV/.netra-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
