"""The project's source a callable depends on: the file of its module and, transitively, of
every module of the project that module imports, so that a template a callable builds (a
setup callable, a scenario) is rebuilt when any of them changes (a model, the config module),
not only the callable's own file.

Imports are read from the source (an AST walk, as `modulefinder` does, importing nothing),
not recorded while modules are imported: the modules a callable depends on were mostly
imported before the tool looks (by the app, at collection), and an import inside a function
(a setup's `from myapp.models import Base` in its body, run only when the template is built)
has not run yet; reading the source sees both. Each name is resolved as Python resolves it:
a module already imported is its `sys.modules` entry's `__file__`; another is found by the
import system's finders, without running it (nor its package). An import that may run counts
(under `if TYPE_CHECKING:`, in a `try:`, in a function), as do `importlib.import_module` and
`__import__` of a literal name: the cost of counting too much is a rebuild more, never one
less. A name computed at run time is not seen.

The project's modules: files under the project root (the directory of the pyproject.toml the
settings were read from; without settings, the nearest directory above the callable's file
holding a pyproject.toml or alembic.ini, else anywhere), and none under site-packages, a
virtualenv, the standard library or this tool's own package. Test modules (`test_*.py`,
`*_test.py`, `conftest.py`) are not followed: changing a test does not rebuild a template.
A file's imports are parsed once per process (per its size and modification time).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterable
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from types import ModuleType

# (level, module, names): `import a.b` -> (0, "a.b", ()); `from ..c import d` -> (2, "c", ("d",))
_Import = tuple[int, str, tuple[str, ...]]
# where a module name leads: its file (None: none, say a namespace package) and, for a
# package, where its submodules are
_Found = tuple[Path | None, list[str] | None]

_TEST_MODULES = ("test_*.py", "*_test.py", "conftest.py")
_INSTALLED = frozenset({"site-packages", "dist-packages", ".venv", ".tox", ".nox"})
_TOOL = Path(__file__).resolve().parent
_ROOT_MARKERS = ("pyproject.toml", "alembic.ini")  # as Settings finds the project's root

_parsed: dict[tuple[str, int, int], tuple[_Import, ...]] = {}  # (path, mtime, size) -> imports
_resolved: dict[str, Path] = {}
_roots: dict[Path, Path | None] = {}


def project_sources(objects: Iterable[object], root: Path | None = None) -> list[Path]:
    """The source files of the modules defining `objects` (functions, classes, modules) and
    of every module of the project they import, transitively, sorted. `root`: the project's
    root (else the nearest one above each object's file)."""
    root = root.resolve() if root is not None else None
    found: set[Path] = set()
    for obj in objects:
        entry = _entry(obj)
        if entry is None:
            continue
        name, path = entry
        if path in found:
            continue
        found.add(path)
        _walk(name, path, root or _root_of(path), found)
    return sorted(found)


def _entry(obj: object) -> tuple[str, Path] | None:
    """The module name and source file of what defines `obj`."""
    if isinstance(obj, ModuleType):
        name, file = obj.__name__, getattr(obj, "__file__", None)
    else:
        name = getattr(obj, "__module__", None) or ""
        try:
            file = inspect.getsourcefile(obj)  # type: ignore[arg-type]
        except TypeError:  # defined where there is no file (a REPL, a built-in)
            file = None
    if not file:
        return None
    if name == "__main__":  # run as `python -m pkg.mod`: its relative imports are pkg's
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        name = spec.name if spec is not None else ""
    return name, _path(file)


def _walk(name: str, path: Path, root: Path | None, found: set[Path]) -> None:
    memo: dict[str, _Found | None] = {}
    judged: set[Path] = set()
    pending = [(name, path)]
    while pending:
        module, file = pending.pop()
        package = file.name == "__init__.py"
        for imported in _imports(file):
            for target in _names(imported, module, package):
                where = _locate(target, memo)
                source = where[0] if where is not None else None
                if source is None or source in judged:
                    continue
                judged.add(source)
                if source not in found and _in_project(source, root):
                    found.add(source)
                    pending.append((target, source))


def _imports(path: Path) -> tuple[_Import, ...]:
    try:
        stat = path.stat()
    except OSError:
        return ()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    found = _parsed.get(key)
    if found is None:
        try:
            source = path.read_bytes()
        except OSError:
            return ()
        found = _parsed[key] = tuple(_imports_in(source))
    return found


# A line that starts an import statement; Python's parser reads the statement itself. Only
# these are parsed, not the whole module (a twentieth of the time on a large code base). A
# docstring's line that reads as an import counts too: a rebuild more, at worst.
_STATEMENT = re.compile(rb"\n[ \t]*(?:from[ \t]+[.\w]+[ \t]+import|import)\b")  # on b"\n" + source
_CALL = re.compile(rb"""\b(?:import_module|__import__)\(\s*(['"])([\w.]+)\1""")


def _imports_in(source: bytes) -> list[_Import]:
    imports: list[_Import] = []
    source = b"\n" + source  # a literal first: the regex engine skips to each newline
    for match in _STATEMENT.finditer(source):
        for node in _statement(source, match.start() + 1):
            if isinstance(node, ast.Import):
                imports.extend((0, alias.name, ()) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names = tuple(alias.name for alias in node.names if alias.name != "*")
                imports.append((node.level, node.module or "", names))
    if b"import_module" in source or b"__import__" in source:
        for match in _CALL.finditer(source):  # importlib.import_module("myapp.models")
            imports.append((0, match[2].decode(), ()))
    return imports


def _statement(source: bytes, start: int) -> list[ast.stmt]:
    """The statements of the logical line starting at `start` (one import, or more after
    `;`): a parenthesized list and backslash continuations run on over lines."""
    end = source.find(b"\n", start)
    end = len(source) if end < 0 else end
    lines = [source[start:end].strip()]
    if b"(" in lines[0] and b")" not in lines[0].partition(b"#")[0]:
        close = source.find(b")", end)
        if close >= 0:
            lines.insert(0, source[start : close + 1].strip())
    else:
        while end < len(source) and source[start:end].rstrip().endswith(b"\\"):
            following = source.find(b"\n", end + 1)
            end = len(source) if following < 0 else following
        lines.insert(0, source[start:end].strip())
    for text in lines:  # the whole statement, else its first line alone
        try:
            return ast.parse(text).body
        except (SyntaxError, ValueError):
            continue
    return []


def _names(imported: _Import, module: str, package: bool) -> list[str]:
    """The module names an import may load: the module, its packages, and each name taken
    from it (a submodule, or an attribute, which finds no module)."""
    level, name, taken = imported
    if level:
        parts = (module if package else module.rpartition(".")[0]).split(".")
        parts = [p for p in parts if p]
        if not module or level - 1 >= len(parts):  # beyond the top-level package
            return []
        base = ".".join([*parts[: len(parts) - (level - 1)], *([name] if name else [])])
    else:
        base = name
    if not base:
        return []
    pieces = base.split(".")
    return [".".join(pieces[:i]) for i in range(1, len(pieces) + 1)] + [
        f"{base}.{t}" for t in taken
    ]


def _locate(name: str, memo: dict[str, _Found | None]) -> _Found | None:
    """Where `name` is: its `sys.modules` entry, else what the finders say (a submodule
    looked up in its package's locations, the package not imported)."""
    if name in memo:
        return memo[name]
    memo[name] = None
    module = sys.modules.get(name)
    found: _Found | None = None
    if module is not None:
        file = getattr(module, "__file__", None)
        locations = getattr(module, "__path__", None)
        found = (
            _path(file) if isinstance(file, str) else None,
            list(locations) if locations is not None else None,
        )
    else:
        parent, _, last = name.rpartition(".")
        # `from pkg import name`, pkg imported: Python takes its attribute first, and one
        # that is no module is no file (a missing one may be a submodule: `sys` stands in)
        attributes = getattr(sys.modules.get(parent), "__dict__", {}) if parent else {}
        if not isinstance(attributes.get(last, sys), ModuleType):
            return None
        spec = None
        try:
            if not parent:
                spec = importlib.util.find_spec(name)  # top level: imports nothing
            elif (above := _locate(parent, memo)) is not None and above[1] is not None:
                spec = importlib.machinery.PathFinder.find_spec(name, above[1])
        except Exception:  # a finder of another package's failing: that name does not count
            spec = None
        if spec is not None:
            origin = spec.origin if spec.has_location else None
            locations = spec.submodule_search_locations
            found = (
                _path(origin) if origin else None,
                list(locations) if locations is not None else None,
            )
    memo[name] = found
    return found


def _in_project(path: Path, root: Path | None) -> bool:
    if path.suffix != ".py" or any(fnmatch(path.name, p) for p in _TEST_MODULES):
        return False
    if path.is_relative_to(_TOOL) or any(path.is_relative_to(s) for s in _stdlib()):
        return False
    if root is not None:
        if not path.is_relative_to(root):
            return False
        path = path.relative_to(root)
    return not _INSTALLED.intersection(path.parts)


@cache
def _stdlib() -> tuple[Path, ...]:
    import sysconfig

    return tuple({Path(sysconfig.get_path(p)).resolve() for p in ("stdlib", "platstdlib")})


def _path(file: str) -> Path:
    found = _resolved.get(file)
    if found is None:
        found = _resolved[file] = Path(os.path.realpath(file))
    return found


def _root_of(path: Path) -> Path | None:
    """The nearest directory above `path` holding a pyproject.toml or alembic.ini."""
    directory = path.parent
    if directory not in _roots:
        _roots[directory] = next(
            (
                d
                for d in (directory, *directory.parents)
                if any((d / marker).exists() for marker in _ROOT_MARKERS)
            ),
            None,
        )
    return _roots[directory]
