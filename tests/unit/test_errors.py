from pathlib import Path

import pytest

from netra_isolation.backends.postgres.server import find_bindir
from netra_isolation.errors import BinariesNotFoundError, UnknownChoiceError
from netra_isolation.seed_data_manager import ScenarioRegistry


def test_missing_postgres_binaries_list_the_paths_and_the_install(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFoundError) as info:
        find_bindir([str(tmp_path / "a"), str(tmp_path / "b")])
    message = str(info.value)
    assert f"{tmp_path / 'a'}/{{initdb,pg_ctl,postgres}}" in message
    assert "apt-get install postgresql" in message
    assert "TEST_POSTGRES_HOST" in message


def test_a_directory_with_all_three_binaries_is_found(tmp_path: Path) -> None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        (tmp_path / tool).touch()
    assert find_bindir([str(tmp_path / "missing"), str(tmp_path)]) == tmp_path


def test_unknown_scenario_lists_the_known_ones() -> None:
    registry = ScenarioRegistry()
    registry.scenario("minimal", seed=1)(lambda session: None)
    registry.scenario("analytics", seed=2)(lambda session: None)
    with pytest.raises(UnknownChoiceError, match="'analytics', 'minimal'"):
        registry.get("minimum")


def test_a_modern_single_clickhouse_binary_is_preferred(tmp_path: Path) -> None:
    from netra_isolation.backends.clickhouse.server import find_clickhouse

    debian, modern = tmp_path / "sbin", tmp_path / "bin"
    for directory, tool in ((debian, "clickhouse-server"), (modern, "clickhouse")):
        directory.mkdir()
        (directory / tool).write_text("#!/bin/sh\n")
        (directory / tool).chmod(0o755)
    assert find_clickhouse([str(debian), str(modern)]) == [str(modern / "clickhouse"), "server"]
    assert find_clickhouse([str(debian)]) == [str(debian / "clickhouse-server")]


def test_missing_clickhouse_says_how_to_install(tmp_path: Path) -> None:
    from netra_isolation.backends.clickhouse.server import find_clickhouse

    with pytest.raises(BinariesNotFoundError) as info:
        find_clickhouse([str(tmp_path)])
    assert "apt-get install clickhouse-server" in str(info.value)
    assert "TEST_CLICKHOUSE_HOST" in str(info.value)


def test_every_error_the_package_defines_is_one_of_ours_and_exported() -> None:
    import inspect

    import netra_isolation
    from netra_isolation import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert all(issubclass(getattr(errors, n), errors.NetraIsolationError) for n in defined)
    assert defined <= set(netra_isolation.__all__)
