"""The README's examples are the files in tests/examples, word for word; its two commands are
the Makefile's targets, doing what it says, and CI runs one of them."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)


def test_every_readme_example_is_a_test_file_as_written() -> None:
    readme = (ROOT / "README.md").read_text()
    examples = {m["path"]: m["code"] for m in EXAMPLE.finditer(readme)}
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "tests/examples").glob("test_*.py")}
    apps = {str(p.relative_to(ROOT)) for p in (ROOT / "tests/e2e/apps").glob("*/tests/test_*.py")}
    assert files <= set(examples) <= files | apps
    for path, code in examples.items():
        assert (ROOT / path).read_text() == code, f"README example differs from {path}"


def readme_commands() -> dict[str, str]:
    """The commands of the README's "two commands" block, each with what it says it does."""
    section = README.read_text().split("## The two commands", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands: dict[str, str] = {}
    for line in block.splitlines():
        command, comment = line.split("#", 1)
        if command.strip():
            commands[command.strip()] = comment.strip()
        else:  # the comment goes on under the previous command
            commands[list(commands)[-1]] += " " + comment.strip()
    return commands


def recipe_lines(recipe: list[str]) -> list[str]:
    """A recipe's lines, a script of this repository it runs replaced by its own lines."""
    lines = []
    for line in recipe:
        script = ROOT / line.lstrip("@").split()[0]
        if line.lstrip("@").startswith("./scripts/") and script.is_file():
            lines += [s.strip() for s in script.read_text().splitlines()]
        else:
            lines.append(line)
    return lines


def ci_commands() -> list[str]:
    """What .ci/run runs, without its shebang, comments, shell options and `cd`."""
    lines = (line.strip() for line in (ROOT / ".ci/run").read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]


def make_targets() -> dict[str, tuple[list[str], list[str]]]:
    """The Makefile's targets: prerequisites and recipe lines, its variables expanded."""
    variables: dict[str, str] = {}
    targets: dict[str, tuple[list[str], list[str]]] = {}
    current = None

    def expand(text: str) -> str:
        while match := re.search(r"\$\((\w+)\)", text):
            text = text.replace(match[0], variables[match[1]])
        return text

    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            targets[current][1].append(expand(line.strip()))
        elif assignment := re.match(r"^(\w+)\s*\??=\s*(.*)$", line):
            variables[assignment[1]] = expand(assignment[2].strip())
        elif rule := re.match(r"^([\w.-]+):(.*)$", line):
            current = rule[1]
            targets[current] = (rule[2].split(), [])
        else:
            current = None
    return targets


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """CI runs one command, the README's `make test`, whose target does what the README says:
    lint, types, and pytest over the whole of tests/ on 2 workers, after the bootstrap."""
    commands, targets = readme_commands(), make_targets()
    [ci] = ci_commands()
    assert ci in commands and ci.startswith("make ")
    assert "whole test suite" in commands[ci] and "under 2 workers" in commands[ci]
    prerequisites, recipe = targets[ci.removeprefix("make ")]
    assert "bootstrap" in prerequisites
    assert any(line.split()[-2:] == ["check", "."] and "ruff" in line for line in recipe)
    assert any(line.endswith("/mypy") for line in recipe)
    pytest_line, *again = [
        [word for word in line.split() if word != '"$@"']
        for line in recipe_lines(recipe)
        if "bin/pytest" in line
    ]
    assert pytest_line[-3:] == ["-n", "2", "tests"]  # every test directory, 2 workers
    # then the tests of what depends on the server's version, on the machine's PostgreSQL 15
    assert [line[-5:] for line in again] == [["-n", "2", "-m", "both_servers", "tests"]]
    assert "PostgreSQL 15" in commands[ci] and "both_servers" in commands[ci]
    assert {
        p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"
    } >= {
        "unit",
        "integration",
        "e2e",
        "examples",
    }


def test_the_readme_demo_runs_the_readme_examples_and_both_commands_bootstrap() -> None:
    commands, targets = readme_commands(), make_targets()
    assert set(commands) == {"make demo", "make test"}
    demo = " ".join(targets["demo"][1])
    examples = {Path(m["path"]).parent for m in EXAMPLE.finditer(README.read_text())}
    # the demo's examples; the others are the sample applications' own, run by tests/e2e
    assert {p for p in examples if "apps" not in p.parts} == {Path("tests/examples")}
    assert "tests/examples" in commands["make demo"] and " tests/examples " in f"{demo} "
    assert "bootstrap" in targets["demo"][0]
    assert any(line.endswith("scripts/bootstrap.sh") for line in targets["bootstrap"][1])
    assert os.access(ROOT / "scripts/bootstrap.sh", os.X_OK)
    assert "scripts/bootstrap.sh" in README.read_text().split("## The two commands", 1)[1]


def test_every_setting_is_in_the_readmes_configuration_table() -> None:
    """A setting a user can set (pyproject, environment) is in the table, by its name."""
    import dataclasses

    from netra_isolation.settings import Settings

    readme = README.read_text()
    table = readme[readme.index("## Configuration") : readme.index("## The throwaway servers")]
    internal = {"project_root", "sources", "postgres", "clickhouse"}  # TEST_* rows, not keys
    names = [f.name for f in dataclasses.fields(Settings) if f.name not in internal]
    assert [name for name in names if f"`{name}`" not in table] == []
