"""The README's examples are the files in tests/examples, word for word, and they run there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)


def test_every_readme_example_is_a_test_file_as_written() -> None:
    readme = (ROOT / "README.md").read_text()
    examples = {m["path"]: m["code"] for m in EXAMPLE.finditer(readme)}
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "tests/examples").glob("test_*.py")}
    apps = {str(p.relative_to(ROOT)) for p in (ROOT / "tests/e2e/apps").glob("*/tests/test_*.py")}
    assert files <= set(examples) <= files | apps
    for path, code in examples.items():
        assert (ROOT / path).read_text() == code, f"README example differs from {path}"


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()
