"""Facts spelled in one place: what is derived from it agrees with it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import ziggeo_async
from ziggeo_async import AsyncZiggeo, RetryPolicy, TokenArguments, ValidationError
from ziggeo_async._core import arguments as arguments_module
from ziggeo_async._core.arguments import (
    ARGUMENT_NAMES,
    COUNT_ARGUMENTS,
    FLAG_ARGUMENTS,
    normalize_arguments,
)
from ziggeo_async._core.defaults import DEFAULT_HOST, EU_WEST_1_HOST
from ziggeo_async.cli._main import _arguments, build_parser
from ziggeo_async.legacy import official_arguments

PACKAGE = Path(ziggeo_async.__file__).parent
TYPED_NAMES = tuple(TokenArguments.__annotations__)


def _accepts(name: str, value: object) -> bool:
    try:
        normalize_arguments({name: value})
    except ValidationError:
        return False
    return True


#: The auth token's writable fields as Ziggeo documents them: the check that the one
#: place is right, now that the emulator takes its field names from it too.
DOCUMENTED_FIELDS = frozenset(
    ("volatile", "hidden", "expiration_date", "usage_expiration_time", "session_limit", "grants")
)


def test_the_typed_dict_names_the_fields_ziggeo_documents() -> None:
    assert frozenset(TYPED_NAMES) == DOCUMENTED_FIELDS


def test_the_argument_names_are_the_typed_dict_s_keys_in_its_order() -> None:
    assert ARGUMENT_NAMES == TYPED_NAMES
    normalizers = arguments_module._NORMALIZERS
    assert tuple(normalizers) == TYPED_NAMES


def test_the_flags_are_the_arguments_that_take_true_and_the_counts_those_that_take_1() -> None:
    assert tuple(name for name in TYPED_NAMES if _accepts(name, True)) == FLAG_ARGUMENTS
    assert tuple(name for name in TYPED_NAMES if _accepts(name, 1)) == COUNT_ARGUMENTS


def test_an_unknown_argument_is_refused_naming_every_typed_argument() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_arguments({"colour": "red"})
    assert all(name in caught.value.reason for name in TYPED_NAMES)


def _option_for(name: str) -> list[str]:
    option = "--" + name.replace("_", "-")
    if name in FLAG_ARGUMENTS:
        return [option]
    if name in COUNT_ARGUMENTS:
        return [option, "1"]
    return [option, '{"read": {"all": true}}']


@pytest.mark.parametrize(
    "command", [["authtokens", "create"], ["authtokens", "update", "tok"], ["auth", "generate"]]
)
def test_the_cli_has_an_option_for_every_typed_argument_and_passes_it_on(
    command: list[str],
) -> None:
    options = [part for name in TYPED_NAMES for part in _option_for(name)]
    passed: dict[str, Any] = _arguments(build_parser().parse_args([*command, *options]))
    assert tuple(passed) == TYPED_NAMES
    normalize_arguments(passed)


def test_the_legacy_face_converts_the_flags_and_counts_the_typed_dict_has() -> None:
    texts = dict.fromkeys(FLAG_ARGUMENTS, "true") | dict.fromkeys(COUNT_ARGUMENTS, "7")
    converted = official_arguments(texts)
    assert converted == dict.fromkeys(FLAG_ARGUMENTS, True) | dict.fromkeys(COUNT_ARGUMENTS, 7)
    normalize_arguments(converted)


def test_a_client_and_a_policy_made_without_arguments_retry_alike() -> None:
    assert AsyncZiggeo("app", "private-key").retry == RetryPolicy()


@pytest.mark.parametrize("host", [DEFAULT_HOST, EU_WEST_1_HOST])
def test_the_hosts_are_spelled_in_the_defaults_module_only(host: str) -> None:
    spelled_in = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if host.removeprefix("https://") in path.read_text(encoding="utf-8")
    )
    assert spelled_in == ["_core/defaults.py"]


def test_the_pipeline_knows_no_endpoint_and_no_model() -> None:
    """The resources say which verb and path they use and read their own answers."""
    source = (PACKAGE / "_request" / "pipeline.py").read_text(encoding="utf-8")
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not any(module.endswith("models") for module in imported)
    assert "/v1/" not in source
    resource = (PACKAGE / "resources" / "authtokens.py").read_text(encoding="utf-8")
    assert "/v1/authtokens/" in resource
