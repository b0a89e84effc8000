from pathlib import Path

import pytest

from netra_isolation.errors import ConfigurationError
from netra_isolation.settings import Settings


def write_pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text(body)


def test_defaults_use_a_throwaway_server(tmp_path: Path) -> None:
    settings = Settings.load(environ={}, root=tmp_path)
    assert settings.postgres is None
    assert settings.source("postgres") == "TEST_POSTGRES_HOST not set"
    assert settings.cache_dir == tmp_path / ".netra_isolation"
    assert settings.alembic_ini == tmp_path / "alembic.ini"


def test_external_server_from_the_seed_documents_variables(tmp_path: Path) -> None:
    env = {"TEST_POSTGRES_HOST": "db.example", "TEST_POSTGRES_PORT": "6543"}
    settings = Settings.load(environ=env, root=tmp_path)
    assert settings.postgres is not None
    assert (settings.postgres.host, settings.postgres.port) == ("db.example", 6543)
    assert settings.source("postgres") == "TEST_POSTGRES_HOST"


def test_url_variable_wins_and_is_parsed(tmp_path: Path) -> None:
    env = {"TEST_POSTGRES_URL": "postgresql://u:p%40ss@h:7000/admin", "TEST_POSTGRES_HOST": "x"}
    pg = Settings.load(environ=env, root=tmp_path).postgres
    assert pg is not None
    assert (pg.user, pg.password, pg.host, pg.port, pg.database) == (
        "u",
        "p@ss",
        "h",
        7000,
        "admin",
    )


def test_bad_port_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TEST_POSTGRES_PORT"):
        Settings.load(
            environ={"TEST_POSTGRES_HOST": "h", "TEST_POSTGRES_PORT": "five"}, root=tmp_path
        )


def test_precedence_is_arguments_then_env_then_pyproject(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        "[tool.netra_isolation]\n"
        'level = "transaction"\nschema = "user_management"\nkeep-failed = true\n',
    )
    settings = Settings.load(environ={"NETRA_ISOLATION_SCHEMA": "thread_messages"}, root=tmp_path)
    assert settings.level == "transaction"
    assert settings.source("level") == "pyproject.toml [tool.netra_isolation]"
    assert settings.schema == "thread_messages"
    assert settings.source("schema") == "NETRA_ISOLATION_SCHEMA"
    assert settings.keep_failed is True
    settings = Settings.load({"level": "database"}, environ={}, root=tmp_path)
    assert (settings.level, settings.source("level")) == ("database", "command line")


def test_unknown_pyproject_key_is_named(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.netra_isolation]\nlevle = 'database'\n")
    with pytest.raises(ConfigurationError, match="levle"):
        Settings.load(environ={}, root=tmp_path)


def test_bad_level_says_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NETRA_ISOLATION_LEVEL"):
        Settings.load(environ={"NETRA_ISOLATION_LEVEL": "table"}, root=tmp_path)


def test_server_data_place_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"server_data 'memory'.*auto, ram, disk"):
        Settings.load(environ={"NETRA_ISOLATION_SERVER_DATA": "memory"}, root=tmp_path)


def test_ram_is_a_tmpfs_with_room(tmp_path: Path) -> None:
    from netra_isolation.servers import RAM_DIR, ram_dir

    assert ram_dir(Path("/proc")) is None  # not a tmpfs
    assert ram_dir(RAM_DIR, min_free=1 << 62) is None  # no room
    # whether this machine has a tmpfs or not: a mount table that says tmp_path is one
    table = tmp_path / "mounts"
    table.write_text(f"proc /proc proc rw 0 0\ntmpfs {tmp_path} tmpfs rw,nosuid 0 0\n")
    assert ram_dir(tmp_path, min_free=0, mounts=table) == tmp_path
    assert ram_dir(tmp_path, min_free=1 << 62, mounts=table) is None  # no room
    assert ram_dir(tmp_path / "missing", min_free=0, mounts=table) is None
    table.write_text(f"/dev/sda1 {tmp_path} ext4 rw 0 0\n")
    assert ram_dir(tmp_path, min_free=0, mounts=table) is None  # not a tmpfs
    assert ram_dir(tmp_path, min_free=0, mounts=tmp_path / "unreadable") is None


def test_validation_query_limit_is_read_like_the_other_settings(tmp_path: Path) -> None:
    assert Settings.load(environ={}, root=tmp_path).validation_query_limit_ms == 1000.0
    write_pyproject(tmp_path, "[tool.netra_isolation]\nvalidation_query_limit_ms = 250\n")
    assert Settings.load(environ={}, root=tmp_path).validation_query_limit_ms == 250
    env = {"NETRA_ISOLATION_VALIDATION_QUERY_LIMIT_MS": "0.5"}
    settings = Settings.load(environ=env, root=tmp_path)
    assert settings.validation_query_limit_ms == 0.5
    assert (
        settings.source("validation_query_limit_ms") == "NETRA_ISOLATION_VALIDATION_QUERY_LIMIT_MS"
    )
    with pytest.raises(ConfigurationError, match=r"validation_query_limit_ms='fast' is not a"):
        Settings.load(environ={"NETRA_ISOLATION_VALIDATION_QUERY_LIMIT_MS": "fast"}, root=tmp_path)
    with pytest.raises(ConfigurationError, match=r"-1.0 \(from command line\) is not a number"):
        Settings.load({"validation_query_limit_ms": -1.0}, environ={}, root=tmp_path)


def test_progress_after_from_pyproject_and_environment(tmp_path: Path) -> None:
    assert Settings.load(environ={}, root=tmp_path).progress_after == 0.5
    write_pyproject(tmp_path, "[tool.netra_isolation]\nprogress_after = 0\n")
    settings = Settings.load(environ={}, root=tmp_path)
    assert (settings.progress_after, settings.source("progress_after")) == (
        0,
        "pyproject.toml [tool.netra_isolation]",
    )
    settings = Settings.load(environ={"NETRA_ISOLATION_PROGRESS_AFTER": "2.5"}, root=tmp_path)
    assert (settings.progress_after, settings.source("progress_after")) == (
        2.5,
        "NETRA_ISOLATION_PROGRESS_AFTER",
    )


def test_factories_and_sessions_are_lists_of_names(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        '[tool.netra_isolation]\nfactories = ["app.factories", "app.more:Base"]\n'
        'sessions = ["app.db:Session"]\n',
    )
    settings = Settings.load(environ={}, root=tmp_path)
    assert settings.factories == ("app.factories", "app.more:Base")
    assert settings.sessions == ("app.db:Session",)
    env = {"NETRA_ISOLATION_SESSIONS": "app.db:Session, app.db:AsyncSession"}
    settings = Settings.load(environ=env, root=tmp_path)
    assert settings.sessions == ("app.db:Session", "app.db:AsyncSession")


@pytest.mark.parametrize(
    ("ini", "tool", "env", "expected"),
    [
        ("[alembic]\nscript_location = m\n", "", {}, ("postgres",)),  # stock `alembic init`
        ("[postgres]\nscript_location = m\n", "", {}, ("postgres",)),
        ("[clickhouse]\nscript_location = m\n", "", {}, ("clickhouse",)),
        ("[postgres]\n[clickhouse]\n", "", {}, ("postgres", "clickhouse")),
        ("[shop]\n", 'postgres_section = "shop"\n', {}, ("postgres",)),
        ("[alembic]\n", "", {"TEST_CLICKHOUSE_HOST": "ch"}, ("postgres", "clickhouse")),
        (None, "", {}, ()),  # no ini at all
    ],
    ids=["alembic", "postgres", "clickhouse", "both", "configured", "external", "none"],
)
def test_backends_used_are_those_with_a_section_or_an_external_server(
    tmp_path: Path, ini: str | None, tool: str, env: dict[str, str], expected: tuple[str, ...]
) -> None:
    if ini is not None:
        (tmp_path / "alembic.ini").write_text(ini)
    write_pyproject(tmp_path, f"[tool.netra_isolation]\n{tool}")
    assert Settings.load(environ=env, root=tmp_path).backends() == expected
