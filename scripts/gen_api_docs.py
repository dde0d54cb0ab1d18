"""Write docs/api.md, the API reference, from the public names and their docstrings.

    python scripts/gen_api_docs.py           # rewrite docs/api.md
    python scripts/gen_api_docs.py --check   # exit 1 if docs/api.md is stale

Documents every name in the ``__all__`` of the public modules, plus the classes
reached through attributes (``client.authtokens``, ``client.auth``).
tests/docs_and_examples/test_docs.py fails when docs/api.md differs from what this writes.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ForwardRef

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"

#: (module, title, {class reached through an attribute: how it is reached}), in page order.
MODULES: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "ziggeo_async",
        "The async client, models and errors",
        {
            "resources.AsyncAuthTokens": "`AsyncZiggeo(...).authtokens`",
            "resources.Auth": "`AsyncZiggeo(...).auth` and `SyncZiggeo(...).auth`",
            "_faces.sync.SyncAuthTokens": "`SyncZiggeo(...).authtokens`",
            "_faces.portal.PortalIterator": "what `SyncZiggeo(...).authtokens.create_many()` and "
            "the other batch methods return",
        },
    ),
    ("ziggeo_async.legacy", "The official SDK's shape", {}),
    ("ziggeo_async.testing", "Testing", {}),
)
#: An object's address in a default's repr changes from run to run.
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: Signatures longer than this are written one parameter a line.
LINE_LENGTH = 88


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    if isinstance(value, ForwardRef):  # a TypedDict's keys under postponed annotations
        value = value.__forward_arg__
    text = value if isinstance(value, str) else inspect.formatannotation(value)
    return text.replace("typing.", "").replace("NoneType", "None")


def _parameters(signature: inspect.Signature, *, drop_first: bool) -> str:
    """A signature written as the source spells it, for every Python version alike."""
    parts: list[str] = []
    parameters = list(signature.parameters.values())[1 if drop_first else 0 :]
    marked_keyword_only = False
    for index, parameter in enumerate(parameters):
        kind = parameter.kind
        if kind is parameter.KEYWORD_ONLY and not marked_keyword_only:
            parts.append("*")
            marked_keyword_only = True
        stars: dict[inspect._ParameterKind, str] = {
            parameter.VAR_POSITIONAL: "*",
            parameter.VAR_KEYWORD: "**",
        }
        prefix = stars.get(kind, "")
        marked_keyword_only |= kind is parameter.VAR_POSITIONAL
        text = prefix + parameter.name
        annotation = _annotation(parameter.annotation)
        if annotation:
            text += f": {annotation}"
        if parameter.default is not parameter.empty:
            # attrs marks a default made by a factory with its NOTHING sentinel.
            default = ADDRESS.sub("", repr(parameter.default))
            default = "<factory>" if default == "NOTHING" else default
            text += f" = {default}" if annotation else f"={default}"
        parts.append(text)
        positional_only_ends = kind is parameter.POSITIONAL_ONLY and (
            index + 1 == len(parameters) or parameters[index + 1].kind is not kind
        )
        if positional_only_ends:
            parts.append("/")
    returned = _annotation(signature.return_annotation)
    returns = f" -> {returned}" if returned else ""
    one_line = f"({', '.join(parts)}){returns}"
    if len(one_line) <= LINE_LENGTH:
        return one_line
    return "(\n" + "".join(f"    {part},\n" for part in parts) + f"){returns}"


def _signature(function: Callable[..., Any], *, drop_first: bool) -> str:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return "(...)"
    return _parameters(signature, drop_first=drop_first)


def _doc(obj: object) -> str:
    return inspect.getdoc(obj) or ""


def _quote(text: str) -> list[str]:
    return [text, ""] if text else []


def _class_members(cls: type) -> Iterator[tuple[str, object]]:
    """Public members defined on the class itself, in source order; dunders left out."""
    for name, member in vars(cls).items():
        if not name.startswith("_"):
            yield name, member


def _render_member(owner: str, name: str, member: object) -> list[str]:
    if isinstance(member, property):
        return [f"#### `{owner}.{name}` (property)", "", *_quote(_doc(member))]
    if isinstance(member, (staticmethod, classmethod)):
        function = member.__func__
        drop = isinstance(member, classmethod)
        kind = "classmethod" if drop else "staticmethod"
        signature = _signature(function, drop_first=drop)
        return [
            f"#### `{owner}.{name}` ({kind})",
            "",
            *_code(f"{name}{signature}"),
            *_quote(_doc(function)),
        ]
    if inspect.isfunction(member):
        prefix = "async def " if inspect.iscoroutinefunction(member) else "def "
        signature = _signature(member, drop_first=True)
        return [
            f"#### `{owner}.{name}`",
            "",
            *_code(f"{prefix}{name}{signature}"),
            *_quote(_doc(member)),
        ]
    return []


def _code(text: str) -> list[str]:
    # Signatures are not runnable Python, so not labelled python
    # (tests/docs_and_examples/test_docs.py runs those).
    return ["```text", text, "```", ""]


def _render_class(name: str, cls: type, reached_as: str | None = None) -> list[str]:
    lines = [f"### `{name}`", ""]
    if hasattr(cls, "__annotations__") and getattr(cls, "__total__", None) is not None:
        # A TypedDict: its keys are the documentation.
        lines += [*_quote(_doc(cls)), "| key | type |", "| --- | --- |"]
        for key, value in _hints(cls).items():
            # A pipe ends a table cell even inside a code span unless escaped.
            cell = _annotation(value).replace("|", "\\|")
            lines.append(f"| `{key}` | `{cell}` |")
        return [*lines, ""]
    bases = [base.__name__ for base in cls.__bases__ if base is not object]
    if issubclass(cls, BaseException):
        lines += [f"Bases: {', '.join(f'`{base}`' for base in bases)}", ""]
        return [*lines, *_quote(_doc(cls))]
    if reached_as is None:
        lines += _code(f"{name}{_signature(cls.__init__, drop_first=True)}")
    else:
        lines += [f"Not made directly: it is {reached_as}.", ""]
    lines += _quote(_doc(cls))
    for member_name, member in _class_members(cls):
        lines += _render_member(name, member_name, member)
    return lines


def _hints(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        hints.update(getattr(klass, "__annotations__", {}))
    return hints


def _render_object(name: str, obj: object, reached_as: str | None = None) -> list[str]:
    if inspect.isclass(obj):
        return _render_class(name, obj, reached_as)
    if inspect.isfunction(obj):
        prefix = "async def " if inspect.iscoroutinefunction(obj) else "def "
        signature = _signature(obj, drop_first=False)
        return [f"### `{name}`", "", *_code(f"{prefix}{name}{signature}"), *_quote(_doc(obj))]
    return []


def _resolve(module: ModuleType, dotted: str) -> object:
    head, _, attribute = dotted.rpartition(".")
    owner = importlib.import_module(f"{module.__name__}.{head}") if head else module
    return getattr(owner, attribute)


def render() -> str:
    """The whole page."""
    lines = [
        "# API reference",
        "",
        "<!-- Generated by scripts/gen_api_docs.py from the docstrings; do not edit. -->",
        "",
        "Every public name, with its signature and docstring. Guides:",
        "[quick start](quickstart.md), [errors and retries](errors.md),",
        "[testing](testing.md).",
        "",
    ]
    for module_name, title, reached in MODULES:
        module = importlib.import_module(module_name)
        public: list[tuple[str, object, str | None]] = [
            (name, getattr(module, name), None)
            for name in getattr(module, "__all__", ())
            if not name.startswith("_")
        ]
        public += [
            (dotted.rpartition(".")[2], _resolve(module, dotted), how)
            for dotted, how in reached.items()
        ]
        # The errors last: they are many, and looked up rather than read.
        public.sort(key=lambda item: inspect.isclass(item[1]) and issubclass(item[1], Exception))
        lines += [f"## {title}: `{module_name}`", "", *_quote(_doc(module).split("\n\n")[0])]
        for name, obj, reached_as in public:
            lines += _render_object(name, obj, reached_as)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != page:
            print("docs/api.md is stale: run python scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(page, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
