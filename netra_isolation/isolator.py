"""The isolator contract: every operation the manager, the handle, snapshots, validation, gc
and the plugin use, declared and typed here, so none of them branches on the backend. Each
backend (`netra_isolation.backends.<name>`) implements the hooks; the shared skeletons
(a template built once per fingerprint across processes, the test-id API of the original
design) live here once."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import MetaData

from netra_isolation.errors import (
    FAILED_AT_ONCE,
    FAILED_TEMPLATE,
    ConfigurationError,
    NetraIsolationError,
    OutOfSpaceError,
    ServerError,
    TemplateBuildError,
)
from netra_isolation.liveness import process_alive_here
from netra_isolation.metrics import Metrics
from netra_isolation.migrations import HEAD
from netra_isolation.naming import Owner, database_name, running_test, template_name
from netra_isolation.seed_data_manager import ScenarioRegistry, registry
from netra_isolation.servers import EphemeralServer, space_of
from netra_isolation.settings import Settings
from netra_isolation.templates import (
    TemplateBuilder,
    builder_from_settings,
    metadata_of,
    no_builder_error,
)
from netra_isolation.threads import in_thread


@dataclass(frozen=True)
class TemplateSpec:
    """What a test asks for: a schema type (Alembic branch label) and an optional scenario."""

    schema_type: str = HEAD
    scenario: str | None = None
    scale: int = 1  # the scenario's counts times this (performance data)

    def labels(self) -> list[str]:
        scenario = self.scenario or "empty"
        return [self.schema_type, scenario if self.scale == 1 else f"{scenario}_x{self.scale}"]


TEMPLATE_TAG = "template:"


def _built_from(owner: Owner | None) -> tuple[TemplateSpec | None, str, str]:
    """What a template's tag says it was built from: spec, fingerprint, and the label of the
    fixture factory whose builder made it ("" for the project's own)."""
    if owner is None or not owner.test.startswith(TEMPLATE_TAG):
        return None, "", ""
    try:
        data = json.loads(owner.test.removeprefix(TEMPLATE_TAG))
        spec = TemplateSpec(str(data["schema"]), data["scenario"], int(data["scale"]))
        return spec, str(data["fingerprint"]), str(data.get("label", ""))
    except (ValueError, KeyError, TypeError):
        return None, "", ""


@dataclass(frozen=True)
class TemplateRef:
    backend: str
    name: str
    fingerprint: str
    spec: TemplateSpec
    built: bool  # built by this process (False: a sealed one was reused)


@dataclass(frozen=True)
class DatabaseRef:
    backend: str
    name: str
    test_id: str
    owner: Owner
    template: TemplateRef | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


# A table's rows as a diff reads them: its key columns (none: rows compare whole), its rows
# (at most a limit), and whether there were more.
TableRows = tuple[list[str], list[dict[str, Any]], bool]
_UNSET: Any = object()
MASK = "***"  # what a password shows as, everywhere
BUILDING = "_b"  # a template's name while it is being built (PostgreSQL)
FAILED_BUILDS = "failed_builds"  # under cache_dir: a file per template a run failed to build
FAILED_BUILDS_KEPT_S = 86400  # older ones (of runs long over) go when another is written


class IsolatorOptions(TypedDict, total=False):
    """What every isolator takes besides its settings (and its backend's own server)."""

    metrics: Metrics | None
    owner: Owner | None
    scenarios: ScenarioRegistry | None
    builder: TemplateBuilder | None
    label: str  # another database of the same tests: in its databases' names


class TestIsolatorBase:
    """The contract of a backend's isolator, and what every backend shares: schema types,
    scenario checks, fingerprints, templates built once, orphans, and the test-id API of the
    original design."""

    __test__ = False
    backend: str
    schema_setting: str  # the setting that names the default schema type
    name_length: int = 63

    def __init__(
        self,
        settings: Settings | None,
        *,
        metrics: Metrics | None = None,
        owner: Owner | None = None,
        scenarios: ScenarioRegistry | None = None,
        builder: TemplateBuilder | None = None,
        label: str = "",
    ) -> None:
        self.settings = settings or Settings.load()
        self.label = label  # another database of the same tests: in its databases' names
        self.metrics = metrics or Metrics()
        self.owner = owner or Owner.new_run()
        self.scenarios = scenarios or registry
        self._builder = builder
        # what a test gets when it names no schema type (the settings' is for their builder)
        self.default_schema: str = (
            getattr(self.settings, self.schema_setting) if builder is None else HEAD
        )
        self._databases: dict[str, DatabaseRef] = {}
        self._templates: dict[TemplateSpec, TemplateRef] = {}
        self._failed: dict[str, TemplateBuildError] = {}  # template name -> what later tests get
        self._template_lock = threading.Lock()
        self._models: MetaData | None = _UNSET
        self._counter = itertools.count()
        self.inspection_cache: dict[str, Any] = {}  # per template: its schema, its counts
        self.progress: Callable[[str], None] = lambda line: None  # the plugin prints these
        self._server: Any = None
        self.throwaway: EphemeralServer[Any, Any] | None = None  # the local server, if ours
        self._server_error: ServerError | None = None
        self._server_lock = threading.Lock()
        # how to tell whether another process lives, where no lease on the server says
        self.liveness: Callable[[Owner], bool | None] = process_alive_here
        self.clean_on_start = True

    def _resolve_server(self) -> Any:
        """Find the server: the settings' external one (checked to answer) or a throwaway."""
        raise NotImplementedError

    def _cached_server(self) -> Any:
        with self._server_lock:
            if self._server_error is not None:
                # one wait per run, not one per test; its traceback reset, it does not keep
                # every earlier test's frames (formatting those made a long run quadratic)
                raise self._server_error.with_traceback(None)
            first = self._server is None
            if first:
                try:
                    self._server = self._resolve_server()
                except ServerError as exc:
                    self._server_error = exc
                    raise
            server = self._server
        if first:
            self._on_server()
        return server

    def _on_server(self) -> None:
        """Once a server answers: prove this process alive on it, and (unless told not to,
        as gc is) remove what dead runs left: a crashed run is cleaned by the next ordinary
        one, no gc needed."""
        self.start_lease()
        if self.clean_on_start:
            self.remove_orphans()

    def remove_orphans(self, run: str | None = None) -> None:
        """Drop the databases whose owner is over (of `run`, if given): at a session start,
        what dead runs left; at a session's end, what its own dead workers left."""
        orphans = self.orphans(run)
        for db, _why in orphans:
            self.remove(db)
        if orphans:
            self.metrics.count("orphans_removed", len(orphans))

    def start_lease(self) -> None:
        """Hold this process's proof of life on the server (the backend's way, if any)."""

    def owner_alive(self, owner: Owner) -> bool | None:
        """Whether the process `owner` names lives (None: cannot tell from here)."""
        return self.liveness(owner)

    def orphans(self, run: str | None = None) -> list[tuple[DatabaseRef, str]]:
        """This prefix's databases (of `run`, if given) whose owner is over (and why), never a
        live one's, never a template, never one without the tool's tag."""
        found = []
        alive: dict[tuple[str, str], bool | None] = {}  # one question per process, not per db
        for db in self.owned(run):
            owner = db.owner
            process = (owner.run, owner.worker)
            if owner.kept or process == (self.owner.run, self.owner.worker):
                continue
            if process not in alive:
                alive[process] = self.owner_alive(owner)
            if alive[process] is False:
                found.append((db, f"its run {owner.run} ({owner.host}, {owner.worker}) is over"))
        return found

    @contextmanager
    def step(self, phase: str, what: str, *, announce: bool = True) -> Iterator[None]:
        """Time a long step into the metrics. A step still running after `progress_after`
        seconds (the setting; 0: every step, as it starts) says so while it runs, so a slow
        start is never silent; it then reports a line when it ends, which an `announce`d step
        (a template build) always does."""
        said = threading.Event()

        def say_running() -> None:
            said.set()
            self.progress(f"netra-isolation: {what} ...")

        running: threading.Timer | None = None
        if self.settings.progress_after > 0:
            running = threading.Timer(
                min(self.settings.progress_after, threading.TIMEOUT_MAX), say_running
            )
            running.daemon = True
            running.start()
        else:
            say_running()  # here, not from a timer thread the step might end before
        started = time.perf_counter()
        try:
            with self.metrics.timed(phase):
                yield
        finally:
            if running is not None:
                running.cancel()
                running.join()  # a line already being written ends before the next one
        elapsed = time.perf_counter() - started
        if announce or said.is_set():
            self.progress(f"netra-isolation: {what}: done in {elapsed:.2f}s")

    # -- templates: built once per fingerprint, across processes ------------------------------
    def ensure_template(self, spec: TemplateSpec, *, test: str | None = None) -> TemplateRef:
        """The sealed template for `spec`: reused if a process built it, else built here under
        a lock every process on the server respects. A template left unsealed (a build that
        crashed) is never trusted: it is dropped and built again.

        A build that fails raises its error to the test that asked (the one pytest runs now,
        as its plugin says, else `test`), once a run: a later test of the run (in any of its
        processes) that needs the same template gets a one-line TemplateBuildError naming
        that test, and nothing is locked, built, migrated or connected to for it again."""
        with self._template_lock:
            if spec in self._templates:
                return self._templates[spec]
            self.validate(spec)
            fingerprint = self.fingerprint(spec)
            name = template_name(self.settings.prefix, spec.labels(), fingerprint)
            self._refuse_failed(name)  # this run failed to build it: fail at once
            self._use_template(name)  # first: a pruning of it ends before it is looked at
            with self._build_lock(name):
                self._refuse_failed(name)  # another process failed it while this one waited
                sealed = self._is_sealed(name)
                if not sealed:
                    self.drop_database(name)
                    try:
                        with (
                            self.step("template_build", f"building template {name}"),
                            self._space(),
                        ):
                            self._build(spec, name, fingerprint)
                    except OutOfSpaceError:
                        raise  # the server's state, not the build's: room may be made
                    except Exception as exc:
                        self._failed_build(name, exc, running_test() or test or "")
                        raise
                self.metrics.count("templates_reused" if sealed else "templates_built")
            ref = TemplateRef(self.backend, name, fingerprint, spec, not sealed)
            self._templates[spec] = ref
            if sealed:
                self._reused(spec)
        self.prune_superseded(ref)
        return ref

    def _reused(self, spec: TemplateSpec) -> None:
        """A template another process built is used here (the backend may catch up on what
        the build did in its process: see PostgreSQL's)."""

    # -- a template that failed to build: once a run -------------------------------------------
    # In this process, a dict; for the run's other processes (xdist workers share the run id,
    # and a machine's cache_dir), a small file per run and template, written under the build
    # lock, so a worker that waited for that lock reads it before building.
    def _failed_build_file(self, name: str) -> Path:
        return self.settings.cache_dir / FAILED_BUILDS / f"{self.owner.run}_{self.backend}_{name}"

    def _refuse_failed(self, name: str) -> None:
        failed = self._failed.get(name)
        if failed is None:
            try:
                data = json.loads(self._failed_build_file(name).read_text())
                failed = TemplateBuildError(
                    self.backend, name, str(data["first"]), str(data["summary"])
                )
            except (OSError, ValueError, KeyError, TypeError):
                return  # none (or unreadable): build
            self._failed[name] = failed
        raise TemplateBuildError(failed.backend, failed.template, failed.first, failed.summary)

    def _failed_build(self, name: str, error: Exception, test: str) -> None:
        """Remember that the build of `name` failed, for the rest of the run; mark `error`
        as the one to show in full."""

        def line(error: BaseException) -> str:
            text = (str(error).strip().splitlines() or [""])[0]
            return f"{type(error).__name__}: {text}"[:160].rstrip(": ")

        # a tool's error that carries the user's (MigrationError, SeedError): the user's
        cause = error.__cause__ if isinstance(error, NetraIsolationError) else None
        summary = line(error) if cause is None else f"{type(error).__name__} ({line(cause)})"
        first = test or f"{self.owner.worker} (pid {self.owner.pid})"
        failed = TemplateBuildError(self.backend, name, first, summary)
        self._failed[name] = failed
        with suppress(AttributeError, TypeError):  # one that takes none: shown as any is
            setattr(error, FAILED_TEMPLATE, name)
            setattr(error, FAILED_AT_ONCE, failed)
        path = self._failed_build_file(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_name(f"{path.name}.{os.getpid()}")
            staged.write_text(json.dumps({"first": failed.first, "summary": failed.summary}))
            staged.replace(path)
            for old in path.parent.iterdir():  # of runs long over
                with suppress(OSError):  # another process's, removed meanwhile
                    if time.time() - old.stat().st_mtime > FAILED_BUILDS_KEPT_S:
                        old.unlink()
        except OSError:
            pass  # an unwritable cache_dir is said where servers start; this process remembers

    def prune_superseded(self, current: TemplateRef) -> list[str]:
        """Drop the templates of `current`'s schema type, scenario, scale and builder that
        were built from other code (migrations, scenario, server), beyond the newest
        `keep_superseded` of them, and never one a live process uses; and what builds that
        died half-way left: RAM and disk stay bounded however often the code changes and
        whatever kills a build. Returns the names dropped."""
        owners = self.template_owners()
        older = []
        for name, owner in owners.items():
            spec, fingerprint, label = _built_from(owner)
            same = owner is not None and spec == current.spec and label == self.label
            if same and owner is not None and fingerprint != current.fingerprint:
                older.append((owner.created, name))
        dropped = []
        for _created, name in sorted(older, reverse=True)[self.settings.keep_superseded :]:
            with self._unused(name) as unused:
                if unused:
                    self.drop_template(name)
                    dropped.append(name)
        for name, owner in owners.items():
            # untagged: a build running, or one that died (killed half-way): its lock tells
            if owner is None and name != current.name:
                with self._not_building(name.removesuffix(BUILDING)) as dead:
                    if dead:
                        self.drop_database(name)
                        dropped.append(name)
        if dropped:
            self.metrics.count("templates_pruned", len(dropped))
        return dropped

    def _not_building(self, name: str) -> AbstractContextManager[bool]:
        """Whether no live process is building the template `name`, held for the block."""
        raise NotImplementedError

    def _use_template(self, name: str) -> None:
        """Record, for as long as this process lives, that it uses the template `name`."""
        raise NotImplementedError

    def _unused(self, name: str) -> AbstractContextManager[bool]:
        """Whether no live process uses the template `name`, held for the block."""
        raise NotImplementedError

    def _build_lock(self, name: str) -> AbstractContextManager[object]:
        """Held while the template `name` is looked at and built: one builder per server."""
        raise NotImplementedError

    def _is_sealed(self, name: str) -> bool:
        """Whether the template `name` exists and was sealed by a build that finished."""
        raise NotImplementedError

    def _build(self, spec: TemplateSpec, name: str, fingerprint: str) -> None:
        """Migrate and seed a new template `name`; seal it last; leave nothing on failure."""
        raise NotImplementedError

    # -- a full server ----------------------------------------------------------------------
    @contextmanager
    def _space(self) -> Iterator[None]:
        """A build or clone that found the server's data directory full fails saying so,
        what takes the room, and how to make some (what it made is gone already)."""
        try:
            yield
        except OutOfSpaceError:
            raise
        except Exception as exc:  # the driver's, or a SeedError / MigrationError carrying it
            if "No space left on device" not in str(exc):
                raise
            raise self.out_of_space(exc) from exc

    def out_of_space(self, cause: BaseException) -> OutOfSpaceError:
        def mib(names: list[str]) -> str:
            total = 0
            for name in names:
                try:
                    total += self.database_size(name)
                except Exception:  # gone meanwhile
                    continue
            return f"{len(names)} taking {total >> 20} MiB"

        data = self.data_path()
        where = f"in {space_of(data)}" if data is not None else "in its data directory"
        templates = sorted(self.template_owners())
        databases = [db.name for db in self.owned()]
        first = str(cause).strip().splitlines()[0][:200]
        elsewhere = (
            "free space on that filesystem"
            if self.settings.server_data == "disk" or data is None
            else 'keep the throwaway servers\' data on disk: server_data = "disk" in '
            "[tool.netra_isolation], then `netra-isolation servers down --purge`"
        )
        return OutOfSpaceError(
            f"the {self.backend} server ran out of space {where} ({first}). Templates of "
            f"prefix {self.settings.prefix!r}: {mib(templates)}; test databases: "
            f"{mib(databases)}. Make room with `netra-isolation gc --templates` (stale "
            f"ones) or `gc --all-templates`, lower keep_superseded, or {elsewhere}."
        )

    def data_path(self) -> Path | None:
        """Where a throwaway server keeps its data (None: an external server's, unknown)."""
        return self.throwaway.data_path() if self.throwaway is not None else None

    # -- backend hooks ----------------------------------------------------------------------
    @property
    def has_server(self) -> bool:
        """True once a server answered; cleanup needs nothing from one that never did."""
        raise NotImplementedError

    def clone(self, template: TemplateRef, name: str, owner: Owner) -> DatabaseRef:
        raise NotImplementedError

    def drop(self, db: DatabaseRef) -> None:
        raise NotImplementedError

    def owned(self, run: str | None = None) -> list[DatabaseRef]:
        """The tool's tagged databases of this prefix (of `run`, if given), templates aside."""
        raise NotImplementedError

    def remove(self, db: DatabaseRef) -> None:
        """Drop a database this process did not make (an orphan), counted apart from drops."""
        raise NotImplementedError

    def keep(self, db: DatabaseRef) -> None:
        """Tag a failed test's database as kept: no cleanup takes it (`gc --kept` does)."""
        raise NotImplementedError

    def connection_info(self, db: DatabaseRef) -> dict[str, Any]:
        """Where `db` is: host, port(s), user, database, URL, its template; password masked."""
        template = db.template.name if db.template else None
        where = self._where(db)
        return {"backend": self.backend, **where, "password": MASK, "database": db.name} | {
            "template": template
        }

    def _where(self, db: DatabaseRef) -> dict[str, Any]:
        """The server's address and user, and `db`'s URL with the password masked."""
        raise NotImplementedError

    def server_identity(self) -> list[str]:
        """What of the server a template depends on (major version, role)."""
        raise NotImplementedError

    def drop_database(self, name: str) -> None:
        """Drop the database `name` if it is there, whoever is connected to it."""
        raise NotImplementedError

    def drop_template(self, name: str) -> None:
        raise NotImplementedError

    def template_is_sealed(self, template: TemplateRef) -> bool:
        raise NotImplementedError

    def database_size(self, name: str) -> int:
        raise NotImplementedError

    def owner_of(self, name: str) -> Owner | None:
        """The tool's tag on the database `name` (None: not one of the tool's)."""
        raise NotImplementedError

    def snapshot(self, db: DatabaseRef, name: str) -> DatabaseRef:
        """A copy of `db` as it is now, named `name`."""
        raise NotImplementedError

    def restore(self, source: str, db: DatabaseRef) -> None:
        """Make `db` (same name, same clients) hold what `source` holds: a snapshot, or its
        template."""
        raise NotImplementedError

    def readable_state(self, template: TemplateRef) -> AbstractContextManager[str]:
        """A database holding `template`'s state that can be read (a copy where a sealed
        template refuses connections)."""
        raise NotImplementedError

    def table_rows(self, database: str, limit: int, connection: Any = None) -> dict[str, TableRows]:
        """Each table's rows (at most `limit`, ordered by the key), the tool's own tables and
        Alembic's aside; on `connection` (the test's own at `transaction` level) if given."""
        raise NotImplementedError

    def column_values(self, database: str, table: str, column: str) -> set[Any] | None:
        """The distinct values of a column (None: no such table)."""
        raise NotImplementedError

    def check_handle(self, db: DatabaseRef, own: Any = None) -> AbstractContextManager[Any]:
        """What this backend's validation checks read through: `own` (the test's connection)
        if given, else a connection of the backend's kind to `db`."""
        raise NotImplementedError

    def drain(self) -> None:
        """Stop work made ahead of need (copies made in advance) and drop what is unused."""

    def close(self) -> None:
        """Give back the server's connections and this process's proof of life."""

    # -- templates --------------------------------------------------------------------------
    @property
    def builder(self) -> TemplateBuilder:
        """What builds this backend's templates: the one given, else the settings' (the
        project's Alembic tree unless metadata, SQL files or a setup callable is named)."""
        if self._builder is None:
            self._builder = builder_from_settings(self.settings, self.backend)
            if self._builder is None:
                raise no_builder_error(self.settings, self.backend)
        return self._builder

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """A SQLAlchemy URL of a database on this backend's server (password included)."""
        raise NotImplementedError

    def models(self) -> MetaData | None:
        """The application's models: the `<backend>_models` setting, else what the builder
        knows (env.py's `target_metadata`, a metadata builder's); None when nothing says."""
        if self._models is _UNSET:
            configured = getattr(self.settings, f"{self.backend}_models")
            self._models = (
                metadata_of(configured, f"{self.backend}_models")
                if configured
                else self.builder.models(self.sqlalchemy_url())
            )
        return self._models

    def schema_for(self, schema_type: str | None, scenario: str | None) -> str:
        """The schema type named, else the one the scenario is seeded into, else the
        configured default (`schema` / `clickhouse_schema`)."""
        if schema_type:
            return schema_type
        if scenario is not None:
            self.scenarios.load(self.settings.scenario_modules)
            declared = self.scenarios.get(scenario).schemas.get(self.backend)
            if declared:
                return declared
        return self.default_schema

    def schema_types(self) -> list[str]:
        return self.builder.schema_types()

    def validate(self, spec: TemplateSpec) -> None:
        self.builder.check_schema_type(spec.schema_type, self.backend)
        if spec.scenario is not None:
            self.scenarios.load(self.settings.scenario_modules)
            self.scenarios.get(spec.scenario)
        if spec.scale < 1:
            raise ConfigurationError(f"scale={spec.scale!r}: a scale factor is at least 1")

    def template_owner(self, spec: TemplateSpec, fingerprint: str) -> Owner:
        """The tag a template carries: what it was built from, so gc can tell a stale one."""
        built_from = {
            "schema": spec.schema_type,
            "scenario": spec.scenario,
            "scale": spec.scale,
            "label": self.label,
        }
        return self.owner.for_test(
            TEMPLATE_TAG + json.dumps({**built_from, "fingerprint": fingerprint}, sort_keys=True)
        )

    def template_owners(self) -> dict[str, Owner | None]:
        """Every template of this prefix (sealed or not) and its tag."""
        raise NotImplementedError

    def templates(self) -> list[str]:
        return sorted(self.template_owners())

    def stale_templates(self) -> dict[str, str]:
        """Templates no test would clone again, and why: built from other migrations, scenario
        code or server than the current ones, or tagged by an older version. Kept: a template
        of a scenario unknown here (registered only inside tests), one a fixture factory's
        builder made (known only inside tests), and one with no tag yet, which may be a build
        in progress (a crashed one is replaced when next needed)."""
        self.scenarios.load(self.settings.scenario_modules)
        stale = {}
        for name, owner in self.template_owners().items():
            spec, fingerprint, label = _built_from(owner)
            if owner is None:
                continue
            if spec is None:
                stale[name] = "no record of what it was built from (an older tag)"
            elif label != self.label:
                continue  # cannot tell: another builder (a fixture factory's) made it
            elif spec.schema_type not in self.schema_types():
                stale[name] = f"schema type {spec.schema_type!r} is gone from the migrations"
            elif spec.scenario is not None and spec.scenario not in self.scenarios.names():
                continue  # cannot tell: its scenario may be registered by a test module
            elif self.fingerprint(spec) != fingerprint:
                stale[name] = "built from other migrations, scenario code or server"
        return stale

    def fingerprint(self, spec: TemplateSpec) -> str:
        parts = [
            self.builder.fingerprint(),
            spec.schema_type,
            self.scenarios.fingerprint(spec.scenario) if spec.scenario else "-",
            str(spec.scale),
            *self.server_identity(),
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    # -- the test-id API ----------------------------------------------------------------------
    def create_isolated_database_sync(
        self,
        test_id: str,
        schema_type: str | None = None,
        scenario: str | None = None,
        *,
        scale: int = 1,
        nodeid: str | None = None,
    ) -> DatabaseRef:
        if test_id in self._databases:
            raise ConfigurationError(
                f"test id {test_id!r} already has a {self.backend} database "
                f"({self._databases[test_id].name}); drop it first with cleanup_test_database()"
            )
        spec = TemplateSpec(self.schema_for(schema_type, scenario), scenario, scale)
        template = self.ensure_template(spec, test=nodeid or test_id)
        owner = self.owner.for_test(nodeid or test_id)
        unique = (
            owner.run,
            owner.worker,
            str(owner.pid),
            owner.test,
            str(next(self._counter)),
            self.label,
        )
        name = database_name(self.settings.prefix, test_id, *unique, max_length=self.name_length)
        with self._space():
            db = self.clone(template, name, owner)
        db = DatabaseRef(db.backend, db.name, test_id, db.owner, db.template)
        self._databases[test_id] = db
        return db

    create_isolated_database = in_thread(create_isolated_database_sync)

    def database(self, test_id: str) -> DatabaseRef:
        try:
            return self._databases[test_id]
        except KeyError:
            raise ConfigurationError(
                f"test id {test_id!r} has no {self.backend} database; call "
                f"create_isolated_database({test_id!r}) first. Known: {sorted(self._databases)}"
            ) from None

    def attach(self, test_id: str, db: DatabaseRef) -> None:
        """Let `test_id` use an existing database (a worker's, at `transaction` level)."""
        self._databases[test_id] = db

    def forget(self, test_id: str) -> DatabaseRef:
        """Stop tracking a test's database (the caller drops it, maybe in the background)."""
        return self._databases.pop(test_id)

    def cleanup_test_database_sync(self, test_id: str) -> None:
        self.drop(self.forget(test_id))

    cleanup_test_database = in_thread(cleanup_test_database_sync)

    def cleanup_all_sync(self) -> None:
        for test_id in list(self._databases):
            self.cleanup_test_database_sync(test_id)

    cleanup_all = in_thread(cleanup_all_sync)

    def get_connection_info(self, test_id: str) -> dict[str, Any]:
        return self.connection_info(self.database(test_id))
