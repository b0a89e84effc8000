"""The app's settings, from the environment. The default database is a developer's: under
test nothing may connect to it."""

import os


class Settings:
    API_V1_STR = "/api/v1"
    DATABASE_URL: str = os.environ.get(
        "APP_DATABASE_URL", "postgresql+psycopg://app:app@localhost:5432/app"
    )
    FIRST_SUPERUSER: str = os.environ.get("FIRST_SUPERUSER", "admin@example.com")
    FIRST_SUPERUSER_PASSWORD: str = os.environ.get("FIRST_SUPERUSER_PASSWORD", "changethis")
    EMAIL_TEST_USER: str = "test@example.com"


settings = Settings()
