"""The app's configuration: a developer database that does not exist (port 1). Under test
nothing may connect to it; the schema builder points this at the template it builds."""

DATABASE_URL = "postgresql+psycopg://tenants:tenants@127.0.0.1:1/tenants_dev"
TENANTS = ("tenant_a", "tenant_b")
