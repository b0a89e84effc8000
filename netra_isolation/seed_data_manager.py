"""The scenario registry: a name, a seed, and functions that build rows with factories.

Scenarios are seeded into templates once per fingerprint, never per test; the fingerprint
covers the scenario's code (its module's source) and its seed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netra_isolation.errors import UnknownChoiceError
from netra_isolation.migrations import files_digest

PostgresSeeder = Callable[[Any], Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    postgres: PostgresSeeder | None = None
    clickhouse: Callable[..., Any] | None = None
    description: str = ""

    def code_paths(self) -> list[Path]:
        paths = []
        for func in (self.postgres, self.clickhouse):
            if func is not None and (source := inspect.getsourcefile(func)):
                paths.append(Path(source))
        return paths


class ScenarioRegistry:
    def __init__(self) -> None:
        self._scenarios: dict[str, Scenario] = {}
        self._extra_code: list[Path] = []
        self._loaded: set[str] = set()

    def register(self, scenario: Scenario) -> Scenario:
        self._scenarios[scenario.name] = scenario
        return scenario

    def scenario(
        self, name: str, *, seed: int, description: str = ""
    ) -> Callable[[PostgresSeeder], PostgresSeeder]:
        """Decorator: `@registry.scenario("minimal", seed=1)` on a function(session)."""

        def decorate(func: PostgresSeeder) -> PostgresSeeder:
            self.register(Scenario(name, seed, postgres=func, description=description))
            return func

        return decorate

    def depends_on_code(self, *paths: Path) -> None:
        """Code (factories) whose change must rebuild every seeded template."""
        self._extra_code.extend(paths)

    def load(self, modules: Iterable[str]) -> None:
        for module in modules:
            if module in self._loaded:
                continue
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module.split(".")[0] and exc.name != module:
                    raise
            self._loaded.add(module)

    def names(self) -> list[str]:
        return sorted(self._scenarios)

    def get(self, name: str) -> Scenario:
        try:
            return self._scenarios[name]
        except KeyError:
            raise UnknownChoiceError(
                "scenario",
                name,
                self._scenarios,
                "Add one with @netra_isolation.scenario(...) or list its module in "
                "scenario_modules under [tool.netra_isolation]",
            ) from None

    def fingerprint(self, name: str) -> str:
        scenario = self.get(name)
        code = files_digest(sorted({*scenario.code_paths(), *self._extra_code}))
        return f"{scenario.name}:{scenario.seed}:{code}"


registry = ScenarioRegistry()
scenario = registry.scenario
