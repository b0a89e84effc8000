"""A template's fingerprint changes with every input a template's contents depend on, so a
template built from other inputs is never reused: the migration scripts, the env.py that runs
them, the library's migration runner and compat fixes, what the test asks for (schema type,
scenario, scale) and the server (major version, role)."""

from __future__ import annotations

import importlib
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import inspect

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings, TemplateSpec
from netra_isolation.backends.postgres.server import PostgresServerInfo

ROOT = Path(__file__).resolve().parents[2]
SECTION = {PostgreSQLTestIsolator: "postgres", ClickHouseTestIsolator: "clickhouse"}
SPECS = {
    PostgreSQLTestIsolator: [
        TemplateSpec("basic"),
        TemplateSpec("user_management"),
        TemplateSpec("user_management", "minimal"),
        TemplateSpec("user_management", "basic_workflow"),
        TemplateSpec("user_management", "basic_workflow", 2),
    ],
    ClickHouseTestIsolator: [
        TemplateSpec("basic"),
        TemplateSpec("events"),
        TemplateSpec("events", "analytics"),
        TemplateSpec("events", "performance"),
        TemplateSpec("events", "performance", 2),
    ],
}


def copy_project(tmp_path: Path) -> Path:
    """This repository's alembic.ini and migrations, in tmp_path; returns the ini."""
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    return tmp_path / "alembic.ini"


def touch(path: Path) -> None:
    """A change that alters no behaviour: only the file's contents."""
    path.write_text(path.read_text() + f"\n# {uuid.uuid4()}\n")


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_migration_scripts_and_env_py_are_in_the_fingerprint(kind: type, tmp_path: Path) -> None:
    ini = copy_project(tmp_path)
    settings = Settings.load(root=ROOT).with_overrides(alembic_ini=ini)
    migrations = tmp_path / "migrations" / SECTION[kind]
    seen = []
    for change in (None, migrations / "versions" / "0001_basic.py", migrations / "env.py"):
        if change is not None:
            touch(change)
        isolator = kind(settings)
        try:
            seen.append(isolator.fingerprint(TemplateSpec("basic")))
        finally:
            isolator.close()
    assert len(set(seen)) == 3, seen


@pytest.mark.parametrize("kind", [PostgreSQLTestIsolator, ClickHouseTestIsolator])
def test_what_the_test_asks_for_is_in_the_fingerprint(kind: type) -> None:
    isolator = kind(Settings.load(root=ROOT))
    try:
        for spec in SPECS[kind]:
            isolator.validate(spec)  # loads the scenarios
        fingerprints = [isolator.fingerprint(spec) for spec in SPECS[kind]]
    finally:
        isolator.close()
    assert len(set(fingerprints)) == len(SPECS[kind])


RUNNER = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import netra_isolation.migrations as m

assert Path(m.__file__).is_relative_to(sys.argv[1]), m.__file__
print(m.migrations_fingerprint(m.alembic_config(Path(sys.argv[2]), sys.argv[3])))
"""


@pytest.mark.parametrize("section", ["postgres", "clickhouse"])
def test_the_librarys_migration_runner_and_compat_are_in_the_fingerprint(
    tmp_path: Path, section: str
) -> None:
    """A copy of the library, changed file by file, imported in a fresh interpreter: the
    code that runs migrations (the runner, the compat fixes migrations run with) changes
    what a migrated template holds as surely as the scripts do."""
    ini = copy_project(tmp_path / "project")
    library = tmp_path / "library"
    shutil.copytree(
        ROOT / "netra_isolation",
        library / "netra_isolation",
        ignore=shutil.ignore_patterns("__pycache__"),
    )

    def fingerprint() -> str:
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, str(library), str(ini), section],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    package = library / "netra_isolation"
    seen = [fingerprint()]
    assert seen == [fingerprint()]  # nothing changed, nothing differs
    for change in (package / "migrations.py", *sorted((package / "compat").glob("*.py"))):
        touch(change)
        seen.append(fingerprint())
    assert len(set(seen)) == len(seen), seen


def test_the_postgres_role_is_in_the_fingerprint() -> None:
    """The same server reached as another role: its templates are its own."""
    settings = Settings.load(root=ROOT)
    isolator = PostgreSQLTestIsolator(settings)
    role, password = f"ni_fp_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    server = isolator.server
    with server.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    other = PostgreSQLTestIsolator(
        settings, server=PostgresServerInfo(server.host, server.port, role, password)
    )
    try:
        spec = TemplateSpec("basic")
        assert other.fingerprint(spec) != isolator.fingerprint(spec)
        with other.server.connect() as conn:
            row = conn.execute("SELECT current_user, current_setting('server_version_num')")
            user, version = row.fetchone() or ("", "0")
        assert other.server_identity() == [str(int(version) // 10000), user]
    finally:
        other.close()
        with server.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        isolator.close()


@pytest.mark.both_servers
def test_postgres_identity_is_the_servers_own_major_version_and_role() -> None:
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    try:
        with isolator.server.connect() as conn:
            row = conn.execute("SELECT current_user, current_setting('server_version')")
            user, version = row.fetchone() or ("", "")
        assert isolator.server_identity() == [version.split(".")[0], user]
    finally:
        isolator.close()


def test_clickhouse_identity_is_the_servers_own_major_version_and_user() -> None:
    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT))
    try:
        version = isolator.server.query("SELECT version()", timeout=5).strip()
        assert isolator.server_identity() == [version.split(".")[0], isolator.server.user]
    finally:
        isolator.close()


NOTES_MODELS = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()  # {unique}
notes = Table(
    "notes", metadata, Column("id", Integer, primary_key=True), Column({column!r}, String)
)
"""
NOTES_SETUP = """
from .models import metadata


def setup(connection):
    metadata.create_all(connection)
"""
NOTES_TEST = """
from {package}.testing import setup


def test_setup_is_there():
    assert setup
"""


def test_a_setup_callable_is_rebuilt_when_a_model_it_imports_changes_not_a_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_templates: Any
) -> None:
    """The project's setup callable imports its models from a module of their own: a column
    changed there rebuilds the template (with the new column); a test file changed does not."""
    unique = uuid.uuid4().hex[:8]
    project, package = tmp_path / "project", f"notes_app_{unique}"
    (project / package).mkdir(parents=True)
    (project / "tests").mkdir()
    (project / package / "__init__.py").write_text("")
    models = project / package / "models.py"
    models.write_text(NOTES_MODELS.format(unique=unique, column="title"))
    (project / package / "testing.py").write_text(NOTES_SETUP)
    test_file = project / "tests" / f"test_notes_{unique}.py"
    test_file.write_text(NOTES_TEST.format(package=package))
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.syspath_prepend(str(project / "tests"))
    settings = Settings.load(root=ROOT).with_overrides(
        project_root=project, postgres_setup=f"{package}.testing:setup"
    )

    def run() -> tuple[Any, set[str]]:
        """A run of the project's: its modules imported afresh, the template ensured."""
        for name in [m for m in sys.modules if m.startswith((package, "test_notes_"))]:
            del sys.modules[name]
        importlib.import_module(test_file.stem)  # collected, as pytest would
        isolator = PostgreSQLTestIsolator(settings)
        try:
            template = isolator.ensure_template(TemplateSpec("head"))
            throwaway_templates(PostgreSQLTestIsolator, settings, template.name)
            with isolator.template_copy(template) as copy, isolator.connect_to(copy) as conn:
                columns = {c["name"] for c in inspect(conn).get_columns("notes")}
        finally:
            isolator.close()
        return template, columns

    first, columns = run()
    assert first.built and columns == {"id", "title"}
    touch(test_file)
    again, columns = run()
    assert (again.name, again.built, columns) == (first.name, False, {"id", "title"})
    models.write_text(NOTES_MODELS.format(unique=unique, column="headline"))
    changed, columns = run()
    assert changed.name != first.name
    assert changed.built and columns == {"id", "headline"}
