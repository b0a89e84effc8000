"""Alembic, run in-process on a connection we hand it, and the fingerprints of templates.

The fingerprint covers the migration scripts *and* the code that runs them (env.py, this
module, the library version): pgtestdb's changelog warns that hashing only the migration
files reuses templates built by older migrating code.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from netra_isolation.errors import ConfigurationError, MigrationError, UnknownSchemaTypeError

_SKIP_PARTS = {"__pycache__"}
# Alembic's `context` and `op` are module-level proxies: one migration at a time per process
# (the full-stack fixture builds a PostgreSQL and a ClickHouse template in parallel threads).
_ALEMBIC = threading.Lock()


def alembic_config(ini: Path, section: str) -> Config:
    if not ini.exists():
        raise ConfigurationError(
            f"no Alembic config at {ini}; set alembic_ini in [tool.netra_isolation] "
            "or run from the directory that holds alembic.ini"
        )
    cfg = Config(str(ini), ini_section=section)
    if not cfg.get_main_option("script_location"):
        raise ConfigurationError(f"section [{section}] of {ini} has no script_location")
    return cfg


def script_directory(cfg: Config) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg)


def schema_types(cfg: Config) -> list[str]:
    """The branch labels of the migration scripts: each is a schema type a test can ask for."""
    labels: set[str] = set()
    for revision in script_directory(cfg).walk_revisions():
        labels.update(revision.branch_labels)
    return sorted(labels)


def check_schema_type(cfg: Config, schema_type: str, backend: str) -> None:
    valid = schema_types(cfg)
    if schema_type not in valid:
        raise UnknownSchemaTypeError(schema_type, valid, backend)


def upgrade(cfg: Config, connection: Any, schema_type: str) -> None:
    """Migrate the branch `schema_type` (and what it depends on) to its head, on `connection`."""
    try:
        with _ALEMBIC:  # the Config is shared by an isolator's builds: one connection at a time
            cfg.attributes["connection"] = connection
            try:
                command.upgrade(cfg, f"{schema_type}@head")
            finally:
                cfg.attributes.pop("connection", None)
    except Exception as exc:
        location = cfg.get_main_option("script_location")
        raise MigrationError(
            f"alembic upgrade {schema_type}@head failed ({type(exc).__name__}: {exc}); "
            f"fix the migration under {location} and run again: the half-built template "
            "was dropped, nothing else was touched"
        ) from exc


@lru_cache(maxsize=64)
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not _SKIP_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def files_digest(paths: Iterable[Path]) -> str:
    """Content hash of files and directory trees, independent of where the checkout lives."""
    digest = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else list(_tree_files(root))
        for path in files:
            stat = path.stat()
            rel = path.relative_to(root) if path != root else Path(path.name)
            digest.update(str(rel).encode() + b"\0")
            digest.update(_file_digest(path, stat.st_mtime_ns, stat.st_size).encode())
    return digest.hexdigest()


def library_version() -> str:
    try:
        return metadata.version("netra-isolation")
    except metadata.PackageNotFoundError:
        return "unknown"


def migrations_fingerprint(cfg: Config) -> str:
    """Scripts + env.py + the ini section + this module + the compat fixes migrations run
    with + the library version."""
    location = Path(script_directory(cfg).dir)
    # Paths and URLs differ between checkouts and servers without changing the schema.
    section = sorted(
        (key, value)
        for key, value in cfg.get_section(cfg.config_ini_section, {}).items()
        if key not in {"script_location", "sqlalchemy.url", "here"}
    )
    digest = hashlib.sha256()
    compat = Path(__file__).with_name("compat")
    digest.update(files_digest([location, Path(__file__), compat]).encode())
    digest.update(repr(section).encode())
    digest.update(library_version().encode())
    return digest.hexdigest()


def cli_url(env_var: str, example: str) -> str:
    """For an env.py run by the `alembic` command: the URL from `-x url=...`, the ini's
    `sqlalchemy.url` or `env_var`; a clear exit when there is none."""
    from alembic import context

    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or context.config.get_main_option("sqlalchemy.url")
        or os.environ.get(env_var)
    )
    if not url:
        raise SystemExit(f"no database URL: pass -x url={example} (or set {env_var})")
    return url


def run_env(
    run: Callable[[Any], None],
    url: Callable[[], str],
    offline: Callable[[str], None] | None = None,
) -> None:
    """The body of an env.py: migrate on the connection netra_isolation passed in, or, run by
    the `alembic` command, on an engine of the URL it was given (`offline` for `--sql`)."""
    from logging.config import fileConfig

    from alembic import context
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)  # no fileConfig here: it would silence pytest's log capture
        return
    if context.config.config_file_name is not None:
        fileConfig(context.config.config_file_name)
    if offline is not None and context.is_offline_mode():
        offline(url())
        return
    engine = create_engine(url(), poolclass=NullPool)
    try:
        with engine.connect() as live:
            run(live)
    finally:
        engine.dispose()
