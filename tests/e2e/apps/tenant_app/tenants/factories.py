"""factory-boy factories that commit through the app's own session."""

import factory
from factory.alchemy import SQLAlchemyModelFactory

from tenants.db import Session
from tenants.models import Tenant


class TenantFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Tenant
        sqlalchemy_session = Session
        sqlalchemy_session_persistence = "commit"

    slug = factory.Sequence(lambda n: f"tenant-{n}")
