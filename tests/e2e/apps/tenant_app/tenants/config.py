"""The app's configuration, from the environment as deployed: the developer's database.
Under test nothing may connect to it (the suite points it at a decoy that counts)."""

import os

DATABASE_URL = os.environ.get(
    "TENANTS_DATABASE_URL", "postgresql+psycopg://tenants:tenants@127.0.0.1:1/tenants_dev"
)
TENANTS = ("tenant_a", "tenant_b")
