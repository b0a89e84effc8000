#!/usr/bin/env bash
# The whole suite on throwaway servers of its own, started empty: every run is a cold start
# (no templates, no databases), as on a fresh CI machine, whatever earlier runs left. Then
# (unless arguments narrow the run) the sample apps in their other environments
# (scripts/test-apps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
dir=$(mktemp -d "${TMPDIR:-/tmp}/netra-test.XXXXXX")
export NETRA_ISOLATION_CACHE_DIR="$dir"
trap '"$VENV/bin/netra-isolation" servers down --purge >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$VENV/bin/pytest" -n 2 tests "$@"
# the sample apps at the lowest releases allowed, and the real app at its own pins
[ "$#" -gt 0 ] || VENV="$VENV" ./scripts/test-apps.sh
