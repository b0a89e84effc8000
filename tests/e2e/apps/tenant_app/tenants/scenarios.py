"""The app's scenario: two tenants, and one item in tenant_a."""

from sqlalchemy import text

import netra_isolation
from tenants.factories import TenantFactory


@netra_isolation.scenario("two_tenants", seed=3)
def two_tenants(session):
    TenantFactory.create_batch(2)
    session.execute(text("INSERT INTO tenant_a.items (name) VALUES ('from the scenario')"))
