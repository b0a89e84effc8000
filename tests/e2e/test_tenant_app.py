"""A multi-tenant project (tests/e2e/apps/tenant_app): its PostgreSQL template is built by a
setup function of its own (`postgres_setup`): a shared schema, a schema per tenant made by
create_all under a schema_translate_map, each stamped at the head of the app's own Alembic
tree. Its `scoped_session` is bound with a schema_translate_map; its factories commit
through it. It imports only `netra_isolation` itself."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netra_isolation import PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "tenant_app"


@pytest.fixture
def app_templates() -> Iterator[PostgreSQLTestIsolator]:
    """The app's templates: a prefix of their own, so they are built here and dropped after."""
    settings = Settings.load(root=ROOT).with_overrides(prefix=f"nitnt{uuid.uuid4().hex[:6]}")
    isolator = PostgreSQLTestIsolator(settings)
    yield isolator
    try:
        for name in isolator.templates():
            isolator.drop_template(name)
    finally:
        isolator.close()


@pytest.fixture
def app(pytester: pytest.Pytester, app_templates: PostgreSQLTestIsolator) -> pytest.Pytester:
    shutil.copytree(APP, pytester.path, dirs_exist_ok=True)
    settings = app_templates.settings
    pytester._monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(settings.cache_dir))
    pytester._monkeypatch.setenv("NETRA_ISOLATION_PREFIX", settings.prefix)
    return pytester


def run(app: pytest.Pytester, *args: str) -> pytest.RunResult:
    return app.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_tenant_app_sees_its_own_rows_in_its_tenant_schema(
    app: pytest.Pytester, app_templates: PostgreSQLTestIsolator, workers: list[str]
) -> None:
    result = run(app, *workers)
    result.assert_outcomes(passed=11)
    assert len(app_templates.templates()) == 2  # built by the setup function, and seeded
