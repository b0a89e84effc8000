"""A multi-tenant project (tests/e2e/apps/tenant_app): its PostgreSQL template is built by a
setup function of its own (`postgres_setup`): a shared schema, a schema per tenant made by
create_all under a schema_translate_map, each stamped at the head of the app's own Alembic
tree. Its `scoped_session` is bound with a schema_translate_map; its factories commit
through it. It imports only `netra_isolation` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
APP = "tenant_app"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_tenant_app_sees_its_own_rows_in_its_tenant_schema(
    run_app: Any, app: pytest.Pytester, app_templates: PostgreSQLTestIsolator, workers: list[str]
) -> None:
    result = run_app(*workers)
    result.assert_outcomes(passed=11)
    assert len(app_templates.templates()) == 2  # built by the setup function, and seeded
