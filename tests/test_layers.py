"""The package's layers, as README's Design section draws them, checked on the source.

Every ``import`` of every module counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a module may import its own layer or the ones beneath it, and
no chain of imports comes back to where it started.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ziggeo_async"

#: Bottom to top; a module belongs to the first layer one of whose prefixes it starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core values", ("ziggeo_async._core", "ziggeo_async._version")),
    ("HTTP layer", ("ziggeo_async._http",)),
    ("request path", ("ziggeo_async._request",)),
    ("resources", ("ziggeo_async.resources",)),
    ("faces", ("ziggeo_async._faces", "ziggeo_async.legacy")),
    ("public names", ("ziggeo_async",)),  # the package's own __init__
    ("tools", ("ziggeo_async.testing", "ziggeo_async.cli", "ziggeo_async.__main__")),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            if module != "ziggeo_async" and prefixes == ("ziggeo_async",):
                continue
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and to the Design")


def _imports(path: Path) -> Iterator[str]:
    """The package modules that ``path`` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from package import module` imports the module too.
            names = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name == "ziggeo_async" or name.startswith("ziggeo_async."):
                yield name


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        # Keep only names that are modules (not classes imported from a module).
        graph[module] = {name for name in _imports(path) if name in modules} - {module}
    return graph


def test_every_module_imports_only_its_own_layer_or_the_ones_beneath() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in _graph().items()
        for target in targets
        # A package's __init__ importing its own modules is how a package is put together.
        if _layer(target) > _layer(module) and not target.startswith(module + ".")
    ]
    assert upward == []


def test_no_chain_of_imports_comes_back_to_where_it_started() -> None:
    graph = _graph()
    # A submodule's import of its own package's __init__ is implicit in Python anyway;
    # what is checked is that the __init__ does not import back the module using it.
    cycles: list[list[str]] = []
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in finished:
                visit(target, [*path, target])
        finished.add(module)

    for module in sorted(graph):
        if module not in finished:
            visit(module, [module])
    assert cycles == []


def test_every_layer_has_modules_and_every_module_a_layer() -> None:
    ranks = {_layer(module) for module in _graph()}
    assert ranks == set(range(len(LAYERS)))


# -- what the package imports when it runs -------------------------------------------------

#: Distributions whose import name differs from their name (none so far but these).
_IMPORT_NAMES = {"opentelemetry-api": "opentelemetry"}
#: Modules that may import an extra at module level: each is imported only where the
#: extra is in use (the aiohttp transport for http_backend="aiohttp"; the pytest plugin
#: by pytest). Everywhere else an extra is imported inside the function that needs it.
_EXTRA_AT_MODULE_LEVEL = {
    "ziggeo_async._http._aiohttp": "fast",
    "ziggeo_async.testing.pytest_plugin": "pytest",
}


def _declared() -> dict[str, set[str]]:
    """The import names of pyproject.toml's dependencies (``""``), and of each extra's."""
    # The check reads the source, so the Pythons with tomllib (3.11 on) are enough for it.
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]

    def import_names(requirements: list[str]) -> set[str]:
        names = set()
        for requirement in requirements:
            name = re.match(r"[A-Za-z0-9._-]+", requirement)
            assert name is not None
            distribution = name.group(0).lower()
            names.add(_IMPORT_NAMES.get(distribution, distribution.replace("-", "_")))
        return names

    declared = {"": import_names(project["dependencies"]), "pytest": {"pytest"}}
    for extra, requirements in project["optional-dependencies"].items():
        declared[extra] = import_names(requirements)
    return declared


def _run_time_imports(tree: ast.Module) -> Iterator[str]:
    """Top-level names imported when the module is imported: module level, ``try`` and
    ``if`` bodies included, ``if TYPE_CHECKING:`` and function bodies not."""

    def walk(body: list[ast.stmt]) -> Iterator[str]:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                yield from (alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                yield node.module.partition(".")[0]
            elif isinstance(node, (ast.If, ast.Try)):
                yield from walk(node.body)
                yield from walk(node.orelse)
                for handler in getattr(node, "handlers", []):
                    yield from walk(handler.body)

    yield from walk(tree.body)


def test_the_package_imports_at_run_time_only_what_it_declares() -> None:
    """``pip install ziggeo-async`` brings the dependencies pyproject.toml names and what
    they happen to need: a module that imports anything else works only while some
    dependency still pulls it in (typing_extensions, say, which anyio needs only on older
    Pythons)."""
    declared = _declared()
    undeclared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        allowed = declared[""] | declared.get(_EXTRA_AT_MODULE_LEVEL.get(module, ""), set())
        undeclared.extend(
            f"{module} imports {name}"
            for name in _run_time_imports(ast.parse(path.read_text(), str(path)))
            if name not in sys.stdlib_module_names | {"ziggeo_async"} | allowed
        )
    assert undeclared == []
