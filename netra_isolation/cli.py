"""`netra-isolation servers up|down|status` and `netra-isolation gc`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from netra_isolation import backends
from netra_isolation.errors import NetraIsolationError
from netra_isolation.isolator import TestIsolatorBase
from netra_isolation.servers import EphemeralServer
from netra_isolation.settings import Settings


def _ephemeral(settings: Settings, backend: str) -> EphemeralServer[Any, Any]:
    return backends.get(backend).parts().server(settings)


def _described(server: EphemeralServer[Any, Any]) -> str:
    """What the running server is (", PostgreSQL 18.1 (...), copy method: ..."), or ""."""
    said = server.describe()
    return f", {said}" if said else ""


def _no_backend(settings: Settings) -> str:
    return (
        f"no backend to manage: {settings.alembic_ini} has no [postgres], [alembic] or "
        "[clickhouse] section and no TEST_POSTGRES_* / TEST_CLICKHOUSE_* server is set"
    )


def _servers(settings: Settings, action: str, purge: bool) -> int:
    """The servers of the backends the project uses (Settings.backends) and no other."""
    code = 0
    used = settings.backends()
    if not used:
        print(_no_backend(settings))
    for name in used:
        external, server = getattr(settings, name), _ephemeral(settings, name)
        if external is not None:
            print(
                f"{name}: external {external.host} (from {settings.source(name)}); "
                "nothing to manage"
            )
        elif action == "up":
            info = server.ensure_running(settings.server_start_timeout)
            for line in server.notes:  # a fallback, and why
                print(line)
            print(
                f"{name}: running on {info.where}{_described(server)} (state: {server.state_path})"
            )
        elif action == "down":
            stopped = server.stop(purge=purge)
            print(
                f"{name}: {'stopped' if stopped else 'was not running'}"
                + (", data removed" if purge else "")
            )
        elif (status := server.status()) is None:
            print(f"{name}: not running (`netra-isolation servers up` starts it)")
            code = 3
        else:
            print(
                f"{name}: running on {status.where} login {status.user}{_described(server)} "
                f"(state: {server.state_path})"
            )
    return code


def _gc(
    settings: Settings,
    dry_run: bool,
    templates: str | None,
    older_than: float | None = None,
    kept: bool = False,
) -> int:
    """Drop databases whose run is over (crashed runs: their lease on the server is gone,
    from whatever host they ran); with `templates="stale"` the templates no test would clone
    again too, with `"all"` every template (rebuilt on next use); with `older_than` (days)
    also the templates built longer ago than that; with `kept`, also the databases kept for
    failed tests of runs that are over."""
    dropped = 0
    isolators: list[TestIsolatorBase] = []
    used = settings.backends()
    if not used:
        print(_no_backend(settings))
    for backend in used:
        # a dry run starts no server: a throwaway one that is not running has nothing to collect
        throwaway = getattr(settings, backend) is None
        if dry_run and throwaway and _ephemeral(settings, backend).status() is None:
            print(
                f"{backend}: throwaway server not running: nothing of it to collect "
                "(a dry run starts no server)"
            )
            continue
        isolator = backends.get(backend).parts().isolator(settings)
        isolator.clean_on_start = False  # what goes is decided below, and said
        isolators.append(isolator)
    orphans = [(isolator, db, why) for isolator in isolators for db, why in isolator.orphans()]
    if kept:
        orphans += [
            (isolator, db, "kept after it failed (--kept)")
            for isolator in isolators
            for db in isolator.owned()
            if db.owner.kept and isolator.owner_alive(db.owner) is False
        ]
    for isolator, db, why in orphans:
        print(f"{'would drop' if dry_run else 'dropping'} {db.name} (test {db.owner.test}: {why})")
        if not dry_run:
            isolator.remove(db)
        dropped += 1
    print(f"{dropped} orphaned database(s)")
    if templates or older_than is not None:
        cutoff = time.time() - (older_than or 0) * 86400
        for isolator in isolators:
            owners = isolator.template_owners()
            every = sorted(owners)
            if templates == "all":  # all but builds in progress (no tag yet)
                doomed = {name: "--all-templates" for name, tag in owners.items() if tag}
            else:
                doomed = isolator.stale_templates() if templates else {}
            if older_than is not None:
                for name, owner in owners.items():
                    if owner is not None and 0 < owner.created < cutoff:
                        doomed.setdefault(name, f"built over {older_than:g} days ago")
            for name, why in sorted(doomed.items()):
                print(f"{'would drop' if dry_run else 'dropping'} template {name} ({why})")
                if not dry_run:
                    isolator.drop_template(name)
            print(
                f"{isolator.backend}: {len(doomed)} template(s) "
                f"{'to drop' if dry_run else 'dropped'}, {len(every) - len(doomed)} kept"
            )
    for isolator in isolators:
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
    gc.add_argument(
        "--kept",
        action="store_true",
        help="also drop the databases kept for failed tests (--netra-keep-failed) of runs over",
    )
    which = gc.add_mutually_exclusive_group()
    which.add_argument(
        "--templates",
        action="store_const",
        const="stale",
        dest="templates",
        help="also drop stale templates: built from older migrations, scenarios or server",
    )
    which.add_argument(
        "--all-templates",
        action="store_const",
        const="all",
        dest="templates",
        help="also drop every template (each is rebuilt on next use)",
    )
    gc.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="also drop templates built more than DAYS ago (say, those of scenarios that only "
        "test modules register, which --templates cannot check)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
        if args.command == "servers":
            return _servers(settings, args.action, args.purge)
        return _gc(settings, args.dry_run, args.templates, args.older_than, args.kept)
    except NetraIsolationError as exc:
        print(f"netra-isolation: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
