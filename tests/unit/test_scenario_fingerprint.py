"""A scenario's fingerprint follows the code that builds its rows (no server needed)."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path

import pytest

from netra_isolation.seed_data_manager import Scenario, ScenarioRegistry

FACTORIES = """
import factory

class ItemFactory(factory.Factory):
    class Meta:
        model = dict

    name = {name!r}
"""


def test_factories_imported_from_another_module_are_in_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique = uuid.uuid4().hex[:8]
    factories, scenarios = tmp_path / f"shop_factories_{unique}.py", tmp_path / f"shop_{unique}.py"
    factories.write_text(FACTORIES.format(name="a"))
    scenarios.write_text(
        f"from shop_factories_{unique} import ItemFactory\n\n\n"
        "def seed(session):\n    return [ItemFactory()]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(f"shop_{unique}")
    registry = ScenarioRegistry()
    registry.register(Scenario("shop", seed=1, postgres=module.seed))
    assert registry.get("shop").code_paths() == sorted([factories, scenarios])

    before = registry.fingerprint("shop")
    assert registry.fingerprint("shop") == before
    factories.write_text(FACTORIES.format(name="a longer name"))
    assert registry.fingerprint("shop") != before


def test_the_projects_modules_a_scenario_imports_are_in_the_fingerprint_tests_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model and a config module the scenario imports (the config one inside the function,
    run only when it seeds), through a package of the project, count; the test modules
    (one importing the scenario, a conftest.py the scenario imports a constant from) and a
    module installed in site-packages do not."""
    unique = uuid.uuid4().hex[:8]
    project, package, tests = tmp_path / "project", f"shop_app_{unique}", f"shop_tests_{unique}"
    for directory in (package, tests):
        (project / directory).mkdir(parents=True)
        (project / directory / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    models = project / package / "models.py"
    models.write_text("COLUMNS = ['id', 'name']\n")
    config = project / package / "config.py"
    config.write_text("LIMIT = 10\n")
    conftest = project / tests / "conftest.py"
    conftest.write_text("PASSWORD = 'secret'\n")
    installed = project / ".venv" / "lib" / "site-packages" / f"vendored_{unique}.py"
    installed.parent.mkdir(parents=True)
    installed.write_text("VERSION = 1\n")
    (project / package / "scenarios.py").write_text(
        f"import vendored_{unique}\n"
        f"from {tests}.conftest import PASSWORD\n"
        "from .models import COLUMNS\n\n\n"
        "def seed(session):\n"
        f"    from {package} import config\n\n"
        "    return [COLUMNS, config.LIMIT, PASSWORD]\n"
    )
    test_module = project / tests / "test_shop.py"
    test_module.write_text(
        f"from {package}.scenarios import seed\n\n\ndef test_seed():\n    seed\n"
    )
    for path in (project, installed.parent):
        monkeypatch.syspath_prepend(str(path))
    module = importlib.import_module(f"{package}.scenarios")
    importlib.import_module(f"{tests}.test_shop")  # loaded, as in a run
    registry = ScenarioRegistry()
    registry.register(Scenario("shop", seed=1, postgres=module.seed))
    assert registry.get("shop").code_paths() == sorted(
        [project / package / name for name in ("__init__.py", "config.py", "models.py")]
        + [project / package / "scenarios.py", project / tests / "__init__.py"]
    )

    seen = [registry.fingerprint("shop")]
    for unchanged in (test_module, conftest, installed):  # none rebuilds
        unchanged.write_text(unchanged.read_text() + "# changed\n")
        assert registry.fingerprint("shop") == seen[0], unchanged
    models.write_text("COLUMNS = ['id', 'name', 'price']\n")
    seen.append(registry.fingerprint("shop"))
    config.write_text("LIMIT = 100\n")
    seen.append(registry.fingerprint("shop"))
    assert len(set(seen)) == 3
