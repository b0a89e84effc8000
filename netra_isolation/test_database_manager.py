"""One manager per pytest session (or xdist worker, or script): servers, isolators, per-worker
databases, background drops and metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from netra_isolation import backends
from netra_isolation.errors import ConfigurationError
from netra_isolation.isolator import DatabaseRef, TemplateSpec, TestIsolatorBase
from netra_isolation.metrics import Metrics
from netra_isolation.naming import Owner, test_id_from_nodeid
from netra_isolation.routing import Target
from netra_isolation.settings import Settings, resolve_name
from netra_isolation.templates import TemplateBuilder, no_builder_error

if TYPE_CHECKING:
    from netra_isolation.backends.clickhouse.isolator import ClickHouseTestIsolator
    from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator


class _Once:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False


class TestDatabaseManager:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        owner: Owner | None = None,
        metrics: Metrics | None = None,
        builders: Mapping[str, TemplateBuilder] | None = None,
        label: str = "",
    ) -> None:
        self.settings = settings or Settings.load()
        # a manager of another database of the same tests (a fixture factory's): its own
        # builders, and a label in its databases' names
        self.builders = dict(builders or {})
        self.label = label
        self._derived: dict[str, TestDatabaseManager] = {}
        self.owner = owner or Owner.new_run()
        self.metrics = metrics or Metrics()
        self.kept: list[dict[str, Any]] = []
        self.progress: Callable[[str], None] = lambda line: None
        self._isolators: dict[str, TestIsolatorBase] = {}
        self._lock = threading.Lock()
        self._worker_databases: dict[tuple[str, TemplateSpec, str], DatabaseRef] = {}
        self._dropper: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._process_setup = _Once()  # shared with the derived managers
        # where the app's connections go without a test's fixture (routing's provider): the
        # worker's database (key None) and the databases of tests that asked for none
        self._app_lock = threading.RLock()
        self._app_targets: dict[str | None, tuple[Target, str]] = {}  # and the test id

    def run_process_setup(self) -> None:
        """Call the setting `process_setup` (`module:function`, no arguments) once for this
        manager (a pytest session, an xdist worker, a script), before its first database,
        whether the templates are built or reused: the app's in-process setup, such as
        registering plugins. Not marked done when it raises: the next test calls it again."""
        spec = self.settings.process_setup
        once = self._process_setup
        if not spec or once.done:
            return
        with once.lock:
            if once.done:
                return
            _, function = resolve_name(spec, "process_setup", example="myapp.testing:setup")
            if not callable(function):
                raise ConfigurationError(f"process_setup = {spec!r} is not callable")
            function()
            once.done = True

    def isolator(self, backend: str) -> TestIsolatorBase:
        """This manager's isolator of `backend` (a registered backend's name), made once."""
        with self._lock:
            if backend not in self._isolators:
                registered = backends.get(backend)
                if backend not in self.builders and not self.settings.uses(backend):
                    # before its drivers load: what to add, not what to install
                    raise no_builder_error(self.settings, backend)
                kind = registered.parts().isolator
                isolator = kind(
                    self.settings,
                    metrics=self.metrics,
                    owner=self.owner,
                    builder=self.builders.get(backend),
                    label=self.label,
                )
                isolator.progress = lambda line: self.progress(line)
                self._isolators[backend] = isolator
            return self._isolators[backend]

    def derived(self, label: str, builders: Mapping[str, TemplateBuilder]) -> TestDatabaseManager:
        """The manager of another database of the same tests (`postgres_fixture(...)`): same
        settings, run and metrics; its own templates; finished with this one."""
        with self._lock:
            if label not in self._derived:
                manager = TestDatabaseManager(
                    self.settings,
                    owner=self.owner,
                    metrics=self.metrics,
                    builders=builders,
                    label=label,
                )
                manager.progress = lambda line: self.progress(line)
                manager._process_setup = self._process_setup
                self._derived[label] = manager
            return self._derived[label]

    @property
    def postgres(self) -> PostgreSQLTestIsolator:
        """The PostgreSQL isolator, typed: its sessions are PostgreSQL's own API."""
        made = self._isolators.get("postgres")  # made already: no lock, no import (each test)
        if made is not None:
            return cast("PostgreSQLTestIsolator", made)
        from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator

        isolator = self.isolator("postgres")
        assert isinstance(isolator, PostgreSQLTestIsolator)
        return isolator

    @property
    def clickhouse(self) -> ClickHouseTestIsolator:
        """The ClickHouse isolator, typed: its clients are ClickHouse's own API."""
        from netra_isolation.backends.clickhouse.isolator import ClickHouseTestIsolator

        isolator = self.isolator("clickhouse")
        assert isinstance(isolator, ClickHouseTestIsolator)
        return isolator

    def worker_database(
        self, backend: str, spec: TemplateSpec, role: str = "worker"
    ) -> DatabaseRef:
        """The one clone per worker that `transaction`-level tests share (each in a SAVEPOINT);
        `role="outside"`: another, where the app's connections outside any test go."""
        key = (backend, spec, role)
        with self._lock:
            if key in self._worker_databases:
                return self._worker_databases[key]
        isolator = self.isolator(backend)
        test_id = "_".join([role, self.owner.worker, *spec.labels(), self.label])
        db = isolator.create_isolated_database_sync(
            test_id,
            spec.schema_type,
            spec.scenario,
            scale=spec.scale,
            nodeid=f"worker:{self.owner.worker}",
        )
        with self._lock:
            self._worker_databases[key] = db
        return db

    def app_target(self, nodeid: str | None) -> Target:
        """Where the app's PostgreSQL connections go when no fixture gave the moment a
        database (`routing`'s provider): for the test `nodeid`, a database of its own, made
        on first connect and dropped after it (`end_test`); outside a test (None), the
        worker's, made on first connect. Both are clones of the default template (the
        settings' schema type and scenario), so what the app finds there is what a test
        finds in its own; what is written in the worker's no test's database sees."""
        with self._app_lock:
            if nodeid in self._app_targets:
                return self._app_targets[nodeid][0]
            self.run_process_setup()
            isolator = self.postgres
            scenario = self.settings.scenario
            spec = TemplateSpec(isolator.schema_for(None, scenario), scenario, 1)
            if nodeid is None:
                db = self.worker_database("postgres", spec, role="outside")
                what = f"the database of worker {self.owner.worker} for use outside tests"
            else:
                db = isolator.create_isolated_database_sync(
                    f"{test_id_from_nodeid(nodeid, 28)}_app",
                    spec.schema_type,
                    spec.scenario,
                    nodeid=nodeid,
                )
                what = f"the database made for {nodeid}, which asked for none"
            found = Target(
                isolator.server.url(db.name), isolator.application_name(db.test_id), what=what
            )
            self._app_targets[nodeid] = (found, db.test_id)
            return found

    def end_test(self, nodeid: str) -> None:
        """Drop the database `app_target` made for the test `nodeid`, if it made one."""
        with self._app_lock:
            made = self._app_targets.pop(nodeid, None)
        if made is not None:
            self.release("postgres", made[1])

    def has_worker_database(
        self, backend: str, schema_type: str | None, scenario: str | None, scale: int
    ) -> bool:
        """Whether a `transaction`-level setup would only look things up, with nothing to wait
        for: the process setup run, the worker's database already made."""
        with self._lock:
            isolator = self._isolators.get(backend)
        if isolator is None or (self.settings.process_setup and not self._process_setup.done):
            return False
        spec = TemplateSpec(isolator.schema_for(schema_type, scenario), scenario, scale)
        with self._lock:
            return (backend, spec, "worker") in self._worker_databases

    def release(self, backend: str, test_id: str, *, keep: bool = False) -> None:
        """Stop tracking a test's database and drop it off the test's clock."""
        isolator = self.isolator(backend)
        db = isolator.forget(test_id)
        if keep:
            isolator.keep(db)
            self.kept.append(isolator.connection_info(db) | {"test": db.owner.test})
            self.metrics.count("databases_kept")
            return
        with self._lock:
            if self._dropper is None:
                self._dropper = ThreadPoolExecutor(1, thread_name_prefix="netra-drop")
            self._pending.append(self._dropper.submit(self._measure_and_drop, isolator, db))

    def _measure_and_drop(self, isolator: TestIsolatorBase, db: DatabaseRef) -> None:
        size = isolator.database_size(db.name)
        self.metrics.size(db.backend, size)
        self.metrics.note(db.owner.test, f"{db.backend}_size_bytes", size)
        with self.metrics.timed_for(db.owner.test, "drop"):
            isolator.drop(db)

    def wait_for_drops(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def finish(self) -> int:
        """Drop what this process created, whether or not an interrupt kept it from tracking
        it; return how many of its databases are left behind (the derived managers' too:
        they share the owner this one counts by)."""
        for manager in self._derived.values():
            manager.finish()
        self.wait_for_drops()
        for (backend, _spec, _role), db in list(self._worker_databases.items()):
            isolator = self.isolator(backend)
            isolator.forget(db.test_id)
            isolator.drop(db)
        self._worker_databases.clear()
        left = 0
        kept = {entry["database"] for entry in self.kept}
        for isolator in self._isolators.values():
            if not isolator.has_server:
                continue
            isolator.drain()
            isolator.cleanup_all_sync()
            untracked = [
                db
                for db in isolator.owned(self.owner.run)
                if db.owner.worker == self.owner.worker and db.name not in kept
            ]
            if self.label:
                left += len(untracked)
                continue
            # a Ctrl-C between making a database and tracking it (say, a copy made ahead,
            # taken for a test and being renamed) leaves one of this process's: the derived
            # managers are done, so whatever of this process is still there and not kept
            # is removed now
            for db in untracked:
                if not db.owner.kept:
                    isolator.remove(db)
                else:
                    left += 1
        if self._dropper is not None:
            self._dropper.shutdown(wait=True)
            self._dropper = None
        if not self.label:  # counted once, by the manager the derived ones belong to
            self.metrics.count("databases_left_behind", left)
        # what this run's workers that died (SIGKILL, OOM) left: their leases ended with them
        for isolator in self._isolators.values():
            if isolator.has_server and isolator.clean_on_start:
                isolator.remove_orphans(self.owner.run)
        for isolator in self._isolators.values():
            isolator.close()
        return left
