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
