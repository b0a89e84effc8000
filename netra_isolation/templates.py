"""How a template gets its schema: the project's Alembic tree (the default), its SQLAlchemy
`MetaData`, SQL files, or a setup callable of its own.

Each builder says what it was built from (its fingerprint, part of the template's name, so a
change rebuilds) and builds on a connection to the template being built; the URL of that
template is there too, for code that opens engines of its own.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData
from sqlalchemy.schema import CreateIndex, CreateTable

from netra_isolation.errors import ConfigurationError, UnknownSchemaTypeError
from netra_isolation.migrations import (
    HEAD,
    alembic_config,
    check_at_heads,
    files_digest,
    migrations_fingerprint,
    schema_type_hint,
    schema_types,
    script_directory,
    target_heads,
    target_metadata,
    unused_backend_error,
    upgrade,
)
from netra_isolation.settings import ini_section, resolve_name
from netra_isolation.sources import project_sources

if TYPE_CHECKING:
    from alembic.config import Config

SetupFunction = Callable[..., Any]


_UNSET: Any = object()


class TemplateBuilder:
    """The base: one schema type (`head`), nothing to check after building."""

    def schema_types(self) -> list[str]:
        return [HEAD]

    def check_schema_type(self, schema_type: str, backend: str) -> None:
        valid = self.schema_types()
        if schema_type not in valid:
            raise UnknownSchemaTypeError(schema_type, valid, backend, self.schema_type_hint())

    def schema_type_hint(self) -> str:
        return f"A template built from {self.describe()} has one schema type, 'head'"

    def fingerprint(self) -> str:
        raise NotImplementedError

    def build(self, connection: Any, url: str, schema_type: str) -> None:
        raise NotImplementedError

    def expected_heads(self, schema_type: str) -> set[str] | None:
        """Alembic revisions the template must be at once built (None: nothing to check)."""
        return None

    def check_heads(self, schema_type: str, found: set[str], database: str) -> None:
        """Raise unless `found` (the template's version table) is at `expected_heads`."""

    def models(self, url: str) -> MetaData | None:
        """The application's models, when the builder knows them (validation compares)."""
        return None

    def describe(self) -> str:
        raise NotImplementedError


class AlembicBuilder(TemplateBuilder):
    """The project's Alembic tree, run in-process on the template (migrations.upgrade)."""

    def __init__(
        self, ini: Path, section: str | None, backend: str = "postgres", version: str = ""
    ) -> None:
        self.config: Config = alembic_config(ini, section, backend)
        self.version = version  # a string of the project's, in the fingerprint
        self._models: MetaData | None = _UNSET

    def schema_types(self) -> list[str]:
        return schema_types(self.config)

    def fingerprint(self) -> str:
        fingerprint = migrations_fingerprint(self.config)
        return f"{fingerprint}:{self.version}" if self.version else fingerprint

    def build(self, connection: Any, url: str, schema_type: str) -> None:
        upgrade(self.config, connection, schema_type, url)

    def schema_type_hint(self) -> str:
        return schema_type_hint(self.config)

    def expected_heads(self, schema_type: str) -> set[str] | None:
        return target_heads(self.config, schema_type)

    def check_heads(self, schema_type: str, found: set[str], database: str) -> None:
        check_at_heads(self.config, schema_type, found, database)

    def models(self, url: str) -> MetaData | None:
        """env.py's `target_metadata`: env.py run in offline mode, migrating nothing."""
        if self._models is _UNSET:
            self._models = target_metadata(self.config, url)
        return self._models

    def describe(self) -> str:
        return str(script_directory(self.config).versions)


@dataclass
class MetadataBuilder(TemplateBuilder):
    """`metadata.create_all()` (PostgreSQL schemas the tables name are created first)."""

    metadata: MetaData
    version: str = ""

    def fingerprint(self) -> str:
        # What create_all would run, compiled for PostgreSQL: any change to the models shows.
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        digest = hashlib.sha256(self.version.encode())
        for table in self.metadata.sorted_tables:
            digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
        return digest.hexdigest()

    def build(self, connection: Any, url: str, schema_type: str) -> None:
        if connection.dialect.name == "postgresql":
            quote = connection.dialect.identifier_preparer.quote_schema
            for schema in sorted({t.schema for t in self.metadata.tables.values() if t.schema}):
                connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        self.metadata.create_all(connection)

    def models(self, url: str) -> MetaData | None:
        return self.metadata

    def describe(self) -> str:
        return f"MetaData of {len(self.metadata.tables)} tables"


@dataclass
class SqlFilesBuilder(TemplateBuilder):
    """SQL files run in order (PostgreSQL: each file as one script; ClickHouse: statement by
    statement, split at `;` ending a line)."""

    paths: Sequence[Path]
    version: str = ""

    def __post_init__(self) -> None:
        missing = [str(p) for p in self.paths if not Path(p).is_file()]
        if missing:
            raise ConfigurationError(f"SQL files of the template not found: {', '.join(missing)}")

    def fingerprint(self) -> str:
        order = "\0".join(Path(p).name for p in self.paths)
        return hashlib.sha256(
            f"{files_digest(self.paths)}\0{order}\0{self.version}".encode()
        ).hexdigest()

    def build(self, connection: Any, url: str, schema_type: str) -> None:
        for path in self.paths:
            script = Path(path).read_text()
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(script)
                continue
            for statement in re.split(r";\s*$", script, flags=re.M):
                if statement.strip():
                    connection.exec_driver_sql(statement)

    def describe(self) -> str:
        return ", ".join(str(p) for p in self.paths)


@dataclass
class SetupBuilder(TemplateBuilder):
    """A callable of the project's: `setup(connection)`, `setup(connection, url)`, or
    `setup(engine)` (a first parameter named `engine` or annotated `Engine`: an Engine on the
    template). It may do anything the application's own setup does; it may open engines of
    its own, on `url` or on any URL its config names (they reach the template all the same:
    `routing`); their connections are ended before the template is sealed.

    Its fingerprint is the source of its module and of every module of the project that
    module imports, transitively (a model, the config module; see `sources`), and of
    `modules`; `root` is the project's (the settings' `project_root`; else the nearest
    directory above the callable's file with a pyproject.toml)."""

    function: SetupFunction
    version: str = ""
    modules: Sequence[str] = field(default_factory=tuple)  # more code it depends on
    root: Path | None = None

    def fingerprint(self) -> str:
        depends = [self.function, *(importlib.import_module(name) for name in self.modules)]
        sources = project_sources(depends, self.root)
        name = getattr(self.function, "__qualname__", repr(self.function))
        return hashlib.sha256(
            f"{files_digest(sources)}\0{name}\0{self.version}".encode()
        ).hexdigest()

    def build(self, connection: Any, url: str, schema_type: str) -> None:
        parameters = list(inspect.signature(self.function).parameters.values())
        if parameters and _wants_engine(parameters[0]):
            # an app's own `init_database(engine)`, as its deploy script calls it
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine(url, poolclass=NullPool)
            try:
                self.function(engine)
            finally:
                engine.dispose()
            return
        self.function(*((connection, url) if len(parameters) >= 2 else (connection,)))

    def describe(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))


def _wants_engine(parameter: inspect.Parameter) -> bool:
    """A setup function's first parameter is an Engine: named `engine`, or annotated so."""
    annotation = parameter.annotation
    named = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return parameter.name == "engine" or named.rsplit(".", 1)[-1] == "Engine"


def metadata_of(target: str, setting: str) -> MetaData:
    """`module:attr` of a MetaData or a declarative base -> the MetaData."""
    _, found = resolve_name(target, setting, example="myapp.models:Base")
    found = getattr(found, "metadata", found)  # a declarative base will do
    if not isinstance(found, MetaData):
        raise ConfigurationError(
            f"{setting} = {target!r} is a {type(found).__name__}, not a MetaData"
        )
    return found


def builder_from_settings(settings: Any, backend: str) -> TemplateBuilder | None:
    """The builder `[tool.netra_isolation]` names for `backend` (`<backend>_metadata`,
    `<backend>_sql`, `<backend>_setup`), else its Alembic tree; None when it has neither."""
    version: str = settings.template_version
    chosen = {
        key: value
        for key in (f"{backend}_metadata", f"{backend}_sql", f"{backend}_setup")
        if (value := getattr(settings, key))
    }
    if len(chosen) > 1:
        raise ConfigurationError(
            f"{' and '.join(chosen)} are both set: a {backend} template is built one way"
        )
    if metadata := chosen.get(f"{backend}_metadata"):
        return MetadataBuilder(metadata_of(metadata, f"{backend}_metadata"), version)
    if paths := chosen.get(f"{backend}_sql"):
        root = settings.project_root
        return SqlFilesBuilder([p if Path(p).is_absolute() else root / p for p in paths], version)
    if setup := chosen.get(f"{backend}_setup"):
        _, function = resolve_name(setup, f"{backend}_setup", example="myapp.testing:setup")
        if not callable(function):
            raise ConfigurationError(f"{backend}_setup = {setup!r} is not callable")
        return SetupBuilder(function, version, root=settings.project_root)
    section = ini_section(settings.alembic_ini, getattr(settings, f"{backend}_section"), backend)
    if section is None:
        return None
    return AlembicBuilder(settings.alembic_ini, section, backend, version)


def no_builder_error(settings: Any, backend: str) -> ConfigurationError:
    return unused_backend_error(settings.alembic_ini, backend)
