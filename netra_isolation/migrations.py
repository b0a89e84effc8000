"""Alembic, run in-process on a connection we hand it, and the fingerprints of templates.

The fingerprint covers the migration scripts *and* the code that runs them (env.py, this
module, the library version): pgtestdb's changelog warns that hashing only the migration
files reuses templates built by older migrating code.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from netra_isolation.errors import ConfigurationError, MigrationError
from netra_isolation.settings import DISCOVERED_SECTIONS, ini_sections
from netra_isolation.threads import outside_loop

# Alembic (with Mako and Pygments, ~170 ms) loads when a template is built or fingerprinted,
# not with the plugin: finding the ini's sections and hashing files need none of it.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

_SKIP_PARTS = {"__pycache__"}
# Alembic's `context` and `op` are module-level proxies: one migration at a time per process
# (the full-stack fixture builds a PostgreSQL and a ClickHouse template in parallel threads).
_ALEMBIC = threading.Lock()
HEAD = "head"  # the schema type of every head: a linear history's one schema
BACKEND_NAMES = {"postgres": "PostgreSQL", "clickhouse": "ClickHouse"}


def unused_backend_error(ini: Path, backend: str) -> ConfigurationError:
    """A test asked for a backend the project has nothing to build a template of."""
    looked = ", ".join(f"[{s}]" for s in DISCOVERED_SECTIONS.get(backend, ()))
    name = BACKEND_NAMES.get(backend, backend)
    return ConfigurationError(
        f"this project does not use {name}: {ini} has no Alembic section for it "
        f"(looked for {looked}). To test against {name}, add a [{backend}] section with "
        f"script_location = <its migrations> to {ini}, or name the section that has them "
        f'with {backend}_section = "..." in [tool.netra_isolation], or build its template '
        f"another way ({backend}_metadata, {backend}_sql or {backend}_setup)"
    )


def alembic_config(ini: Path, section: str | None, backend: str = "postgres") -> Config:
    setting = f"{backend}_section"
    if not ini.exists():
        raise ConfigurationError(
            f"no Alembic config at {ini}; set alembic_ini in [tool.netra_isolation] "
            "or run from the directory that holds alembic.ini"
        )
    if section is None:
        raise unused_backend_error(ini, backend)
    if section not in ini_sections(ini):
        raise ConfigurationError(
            f"{ini} has no section [{section}] (from {setting}); its sections: "
            f"{', '.join(ini_sections(ini)) or '(none)'}"
        )
    from alembic.config import Config

    cfg = Config(str(ini), ini_section=section)
    if not cfg.get_main_option("script_location"):
        raise ConfigurationError(f"section [{section}] of {ini} has no script_location")
    return cfg


def script_directory(cfg: Config) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(cfg)


def schema_types(cfg: Config) -> list[str]:
    """What a test can ask for: "head" (every head) and each branch label of the scripts."""
    labels: set[str] = {HEAD}
    for revision in script_directory(cfg).walk_revisions():
        labels.update(revision.branch_labels)
    return sorted(labels)


def schema_type_hint(cfg: Config) -> str:
    return (
        "Schema types are 'head' (every head of the history) and the Alembic branch labels "
        f"of the revisions under {script_directory(cfg).versions}"
    )


def target_heads(cfg: Config, schema_type: str) -> set[str]:
    """The revisions a database of `schema_type` is at once migrated."""
    script = script_directory(cfg)
    target = "heads" if schema_type == HEAD else f"{schema_type}@head"
    return {r.revision for r in script.get_revisions(target) if r is not None}


def upgrade(cfg: Config, connection: Any, schema_type: str, url: str) -> None:
    """Migrate the branch `schema_type` (and what it depends on) to its head, on `connection`.

    A stock env.py ignores the connection and builds an engine from the section's
    `sqlalchemy.url`: that URL is the template's too while Alembic runs, so no env.py reaches
    a database named in the ini (a developer's). Its `fileConfig` call is undone afterwards.
    An async env.py (`alembic init -t async`) runs its own loop with `asyncio.run`: when the
    build was asked for from inside a running loop (an async test's app engine connecting
    first), Alembic runs in a thread of its own."""
    outside_loop(_upgrade, cfg, connection, schema_type, url)


def _upgrade(cfg: Config, connection: Any, schema_type: str, url: str) -> None:
    from alembic import command

    target = "heads" if schema_type == HEAD else f"{schema_type}@head"
    section = cfg.config_ini_section
    try:
        # the Config is shared by an isolator's builds: one connection, one URL at a time
        with _ALEMBIC, _logging_kept():
            cfg.attributes["connection"] = connection
            ini_url = cfg.get_section_option(section, "sqlalchemy.url")
            cfg.set_section_option(section, "sqlalchemy.url", url.replace("%", "%%"))
            try:
                command.upgrade(cfg, target)
            finally:
                cfg.attributes.pop("connection", None)
                cfg.set_section_option(
                    section, "sqlalchemy.url", (ini_url or "").replace("%", "%%")
                )
    except Exception as exc:
        location = cfg.get_main_option("script_location")
        if _could_not_connect(exc):
            env_py = Path(script_directory(cfg).dir) / "env.py"
            first = str(exc).strip().splitlines()[0][:200]
            raise MigrationError(
                f"alembic upgrade {target}: {env_py} tried to connect to a database of its "
                f"own ({type(exc).__name__}: {first}) instead of using the connection "
                "netra-isolation hands it. Make env.py use the connection it is given, first "
                f"thing in run_migrations_online():\n\n{ENV_FIX}\nThe half-built template was "
                "dropped, nothing else was touched."
            ) from exc
        scripts = Path(script_directory(cfg).dir).resolve()
        failed_in = _last_frame_under(exc, scripts)
        if failed_in is None:  # in Alembic's or a driver's code, called from no file of ours
            fix = f"fix the migration under {location}"
        elif failed_in[0].name == "env.py" and failed_in[0].parent == scripts:
            fix = f"fix {failed_in[0]} (line {failed_in[1]}), which runs the migrations,"
        else:
            fix = f"fix the migration {failed_in[0]} (line {failed_in[1]})"
        raise MigrationError(
            f"alembic upgrade {target} failed ({type(exc).__name__}: {exc}); {fix} and run "
            "again: the half-built template was dropped, nothing else was touched"
        ) from exc


def _last_frame_under(exc: BaseException, directory: Path) -> tuple[Path, int] | None:
    """The innermost place in the error's traceback that is a file under `directory` (env.py
    or a revision), and its line."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(directory):
            found = (path, frame.lineno or 0)
    return found


def _could_not_connect(exc: BaseException) -> bool:
    """An error of connecting (env.py reaching for a server of its own), not of a migration."""
    text = str(exc).lower()
    signs = (
        "connection refused",
        "could not connect",
        "connect call failed",
        "connection to server",
    )
    return any(sign in text for sign in signs) or isinstance(exc, ConnectionError)


ENV_FIX = """    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return"""


def target_metadata(cfg: Config, url: str) -> MetaData | None:
    """What env.py passes as `target_metadata`: env.py run offline (no connection) with
    `url` as the section's sqlalchemy.url, no revision run."""
    from alembic.runtime.environment import EnvironmentContext

    script = script_directory(cfg)
    section = cfg.config_ini_section
    with _ALEMBIC, _logging_kept():
        ini_url = cfg.get_section_option(section, "sqlalchemy.url")
        cfg.set_section_option(section, "sqlalchemy.url", url.replace("%", "%%"))
        try:
            with EnvironmentContext(
                cfg, script, fn=lambda rev, context: [], as_sql=True, output_buffer=io.StringIO()
            ) as environment:
                script.run_env()
                found = environment.context_opts.get("target_metadata")
        except Exception as exc:
            raise MigrationError(
                f"could not read target_metadata from {Path(script.dir) / 'env.py'} "
                f"({type(exc).__name__}: {exc}); name your models with the setting "
                '<backend>_models = "package.module:Base"'
            ) from exc
        finally:
            cfg.set_section_option(section, "sqlalchemy.url", (ini_url or "").replace("%", "%%"))
    if isinstance(found, (list, tuple)):  # env.py may pass several
        merged = MetaData()
        for metadata in found:
            for table in metadata.tables.values():
                table.to_metadata(merged)
        return merged
    return found if isinstance(found, MetaData) else None


def check_at_heads(cfg: Config, schema_type: str, found: set[str], database: str) -> None:
    """Raise unless the template's version table holds exactly the heads of `schema_type`."""
    expected = target_heads(cfg, schema_type)
    if found == expected:
        return
    env_py = Path(script_directory(cfg).dir) / "env.py"
    raise MigrationError(
        f"Alembic ran, but the template {database} is not at {', '.join(sorted(expected))} "
        f"(its version table holds: {', '.join(sorted(found)) or 'nothing'}): {env_py} "
        "migrated a database other than the one netra-isolation handed it. The template was "
        "dropped and nothing was sealed. Make env.py use the connection it is given, first "
        f"thing in run_migrations_online():\n\n{ENV_FIX}\n\nand check that database."
    )


@contextmanager
def _logging_kept() -> Iterator[None]:
    """A stock env.py calls `logging.config.fileConfig`, which disables every logger that
    exists (pytest's caplog, the application's) and replaces the root's handlers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    loggers = {
        name: (logger.disabled, logger.level, list(logger.handlers))
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        for name, (disabled, lvl, hs) in loggers.items():
            logger = logging.getLogger(name)
            logger.disabled, logger.level, logger.handlers[:] = disabled, lvl, hs


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
