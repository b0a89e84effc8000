"""The app's configuration, from the environment. The default is a developer's database that
does not exist (port 1): under test nothing may connect to it."""

import os

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql+psycopg2://app:app@127.0.0.1:1/real_app_dev"
)
