"""`netra-isolation servers up|down|status` and `netra-isolation gc`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from netra_isolation.errors import NetraIsolationError
from netra_isolation.postgres_isolation import PostgreSQLTestIsolator
from netra_isolation.servers.postgres import EphemeralPostgres
from netra_isolation.settings import Settings


def _servers(settings: Settings, action: str, purge: bool) -> int:
    if settings.postgres is not None:
        pg = settings.postgres
        print(
            f"postgres: external {pg.host}:{pg.port} (from {settings.source('postgres')}); "
            "nothing to manage"
        )
        return 0
    server = EphemeralPostgres(settings.cache_dir)
    if action == "up":
        info = server.ensure_running(settings.server_start_timeout)
        print(f"postgres: running on {info.host}:{info.port} (state: {server.state_path})")
    elif action == "down":
        stopped = server.stop(purge=purge)
        print(
            f"postgres: {'stopped' if stopped else 'was not running'}"
            + (", data removed" if purge else "")
        )
    else:
        status = server.status()
        if status is None:
            print("postgres: not running (`netra-isolation servers up` starts it)")
            return 3
        print(
            f"postgres: running on {status.host}:{status.port} user {status.user} "
            f"(state: {server.state_path})"
        )
    return 0


def _gc(settings: Settings, dry_run: bool) -> int:
    """Drop databases whose owning process is gone (crashed runs); templates stay."""
    import os
    import socket

    isolator = PostgreSQLTestIsolator(settings)
    host = socket.gethostname()
    dropped = 0
    for db in isolator.owned():
        if db.owner.host != host:
            continue
        try:
            os.kill(db.owner.pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        print(f"{'would drop' if dry_run else 'dropping'} {db.name} (test {db.owner.test})")
        if not dry_run:
            isolator.drop(db)
        dropped += 1
    print(f"{dropped} orphaned database(s)")
    isolator.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netra-isolation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    servers = sub.add_parser("servers", help="manage the throwaway local servers")
    servers.add_argument("action", choices=("up", "down", "status"))
    servers.add_argument("--purge", action="store_true", help="with down: delete the data too")
    gc = sub.add_parser("gc", help="drop databases left by crashed runs")
    gc.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
        if args.command == "servers":
            return _servers(settings, args.action, args.purge)
        return _gc(settings, args.dry_run)
    except NetraIsolationError as exc:
        print(f"netra-isolation: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
