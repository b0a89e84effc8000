#!/usr/bin/env bash
# The whole suite on throwaway servers of its own, started empty: every run is a cold start
# (no templates, no databases), as on a fresh CI machine, whatever earlier runs left. Its
# PostgreSQL is the one the tool chooses: 18 from the [server] extra's wheel in .venv. Then
# (unless arguments narrow the run):
#   - the sample apps in their other environments (scripts/test-apps.sh), on the same servers;
#   - the tests marked `both_servers` (what depends on the server's version) again, on the
#     machine's PostgreSQL 15 (PG15_BINDIR, default /usr/lib/postgresql/15/bin), with servers
#     of their own started empty; without that PostgreSQL, one line says so and it is skipped.
#     By hand: NETRA_ISOLATION_PG_BINDIR=/usr/lib/postgresql/15/bin pytest -m both_servers
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PG15_BINDIR=${PG15_BINDIR:-/usr/lib/postgresql/15/bin}
dirs=()
down() {  # the servers of a cache directory stopped, their data and the directory deleted
  NETRA_ISOLATION_CACHE_DIR="$1" "$VENV/bin/netra-isolation" servers down --purge >/dev/null 2>&1 || true
  rm -rf "$1"
}
trap 'for d in "${dirs[@]}"; do down "$d"; done' EXIT
servers_of() {  # what PostgreSQL a pass ran on, as `servers status` says it
  local said
  said=$({ "$VENV/bin/netra-isolation" servers status 2>/dev/null || true; } | grep '^postgres:')
  echo "test.sh: $1 ran on ${said:-postgres: not running}"
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/netra-test.XXXXXX")
dirs+=("$dir")
export NETRA_ISOLATION_CACHE_DIR="$dir"
"$VENV/bin/pytest" -n 2 tests "$@"
[ "$#" -eq 0 ] || exit 0
servers_of "the suite"
# the sample apps at the lowest releases allowed and on Python 3.13, the real app at its pins
VENV="$VENV" ./scripts/test-apps.sh
down "$dir"  # its memory back before the next servers start
dirs=()

if [ ! -x "$PG15_BINDIR/initdb" ]; then
  echo "test.sh: no PostgreSQL 15 at $PG15_BINDIR (set PG15_BINDIR): the both_servers tests on it are skipped"
  exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/netra-test15.XXXXXX")
dirs+=("$dir")
export NETRA_ISOLATION_CACHE_DIR="$dir" NETRA_ISOLATION_PG_BINDIR="$PG15_BINDIR"
echo "test.sh: the both_servers tests again, on the machine's PostgreSQL 15, servers started empty:"
"$VENV/bin/netra-isolation" servers up  # says which PostgreSQL, as the run's header does
"$VENV/bin/pytest" -n 2 -m both_servers tests
