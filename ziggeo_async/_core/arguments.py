"""Validation and encoding of call arguments; no I/O.

One path for every operation: ``normalize_arguments`` checks the six documented
arguments and turns them into plain JSON values; ``encode_form`` writes those as
the ``application/x-www-form-urlencoded`` body create and update send, and the
client-token cipher puts them into its JSON payload as they are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypedDict, TypeVar, cast, get_args, get_type_hints, overload
from urllib.parse import quote, quote_plus

from .errors import Refusal, ValidationError
from .models import GRANT_NAMES, Grant, Grants

__all__ = [
    "ARGUMENT_NAMES",
    "COUNT_ARGUMENTS",
    "FLAG_ARGUMENTS",
    "MAX_SECONDS",
    "MAX_SESSION_LIMIT",
    "MAX_TIMEOUT_SECONDS",
    "MAX_TOKEN_ID_CHARS",
    "GrantsInput",
    "TokenArguments",
    "check_argument_names",
    "check_batch_items",
    "encode_form",
    "json_writer",
    "normalize_arguments",
    "path_segment",
    "plain_number",
    "timeout_seconds",
]

_GRANT_FIELDS = ("resources", "session_owned", "all")
#: The longest token id or key accepted. Ziggeo's token ids are 32 hex characters; a
#: key is a name of the caller's. Percent-encoded, a character takes at most 12 bytes
#: (4 UTF-8 bytes, 3 characters each), so 256 characters stay within 3 KiB of path:
#: far below the 8 KiB request line common servers accept, and httpx's 64 Ki-character
#: URL limit, which raised ``InvalidURL`` from below.
MAX_TOKEN_ID_CHARS = 256
#: The largest ``expiration_date`` (Unix seconds; about the year 36,800) and
#: ``usage_expiration_time`` (seconds; about 34,800 years). Beyond any meaning the API
#: can give them, and it keeps ``str()`` of the int short (``10**5000`` raised
#: ``ValueError`` there).
MAX_SECONDS = 2**40
#: The largest ``session_limit``: a signed 32-bit integer, what a server's count holds.
MAX_SESSION_LIMIT = 2**31 - 1
#: The longest timeout accepted, in seconds (a day): beyond it a timeout is no longer a
#: bound a caller means, and an infinite or huge one fails below (``OverflowError``).
MAX_TIMEOUT_SECONDS = 86_400
_SHOWN_LIMIT = 10**20
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)
_T = TypeVar("_T")

#: What ``grants=`` accepts: the typed models, or the same shape as plain dicts.
GrantsInput = Grants | Mapping[str, Grant | Mapping[str, Any]]


class TokenArguments(TypedDict, total=False):
    """The arguments of create, update and generate; every one is optional.

    ``None`` is accepted at run time as "not given".
    """

    #: Deleted automatically if it remains empty.
    volatile: bool
    #: A hidden token cannot be used directly.
    hidden: bool
    #: When the token expires: Unix seconds, or an aware ``datetime``.
    expiration_date: int | datetime
    #: Expiration time per session: seconds, or a ``timedelta`` (fractions dropped).
    usage_expiration_time: int | timedelta
    #: Maximal number of sessions (one opens on each page load or refresh).
    session_limit: int
    #: The permissions granted: ``Grants``, or the same shape as plain dicts.
    grants: GrantsInput


# The argument names are spelled once, in TokenArguments (literal, for type checkers);
# everything else that lists them is derived from it here.
_ARGUMENT_TYPES: Final = get_type_hints(TokenArguments)
#: The arguments create, update and generate accept, in the order the API documents them.
ARGUMENT_NAMES: Final = tuple(_ARGUMENT_TYPES)
#: The arguments that are True or False (the form sends them as ``true``/``false``).
FLAG_ARGUMENTS: Final = tuple(name for name, kind in _ARGUMENT_TYPES.items() if kind is bool)
#: The arguments that are whole numbers (a ``datetime`` or ``timedelta`` is read as one).
COUNT_ARGUMENTS: Final = tuple(
    name for name, kind in _ARGUMENT_TYPES.items() if kind is int or int in get_args(kind)
)


def _type_name(value: object) -> str:
    return type(value).__name__


def _text(value: _T) -> _T:
    """A str subclass as its text: its own ``__eq__``, ``__hash__``, ``__len__`` or
    ``__str__`` may disagree with it, and the checks and the wire read the text."""
    return cast("_T", str.__str__(value)) if isinstance(value, str) else value


@overload
def plain_number(value: int) -> int: ...
@overload
def plain_number(value: float) -> float: ...
def plain_number(value: float) -> float:
    """An int or float (a subclass, say) as the plain number it holds. A subclass's own
    comparisons, ``__str__`` or ``__index__`` may disagree with its value; every check
    compares, and the wire and httpx read the value."""
    return int.__int__(value) if isinstance(value, int) else float.__float__(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(name, f"expected True or False, got {_type_name(value)}")
    return value


def _check_count(name: str, value: object, maximum: int) -> int:
    if type(value) is int and 0 <= value <= maximum:  # the common case, before the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"expected an int, got {_type_name(value)}")
    value = plain_number(value)
    if value < 0:
        # str() of a huge int raises ValueError (more than 4,300 digits): show short ones.
        shown = f", got {value}" if value > -_SHOWN_LIMIT else ""
        raise ValidationError(name, f"must not be negative{shown}")
    if value > maximum:
        raise ValidationError(name, f"must be at most {maximum}")
    return value  # plain: an IntEnum or other subclass may str() as its name, not its digits


def timeout_seconds(argument: str, value: object, refuse: Refusal = ValidationError) -> float:
    """A timeout or deadline in seconds: a number above 0 and at most ``MAX_TIMEOUT_SECONDS``.

    The one check of a number of seconds, for the clients and for every call: a call's
    argument is refused with ``ValidationError``, a client's with ``configuration_error``.
    NaN, infinities and numbers too large for a float are refused with the rest.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(argument, f"expected a number of seconds, got {_type_name(value)}")
    if type(value) is not float and type(value) is not int:
        value = plain_number(value)
    # Compared before float(): float(10**400) would raise OverflowError.
    if not 0 < value <= MAX_TIMEOUT_SECONDS:  # also False for NaN
        raise refuse(argument, f"must be above 0 and at most {MAX_TIMEOUT_SECONDS} seconds (a day)")
    return float(value)


def _expiration_date(value: object) -> int:
    if isinstance(value, datetime):
        try:
            # datetime raises for a tzinfo whose offset is no timedelta or a day or more.
            offset = None if value.tzinfo is None else value.utcoffset()
        except (TypeError, ValueError):
            raise ValidationError(
                "expiration_date", "its tzinfo gives no valid UTC offset"
            ) from None
        if offset is None:
            raise ValidationError(
                "expiration_date",
                "naive datetime is ambiguous; give an aware one (tzinfo set) or Unix seconds",
            )
        # Floor division is exact and rounds down, so a moment before the epoch stays
        # negative (int() of a float would truncate -0.5 s to an accepted 0).
        return _check_count("expiration_date", (value - _EPOCH) // _SECOND, MAX_SECONDS)
    return _check_count("expiration_date", value, MAX_SECONDS)


def _usage_expiration_time(value: object) -> int:
    if type(value) is not int and isinstance(value, timedelta):
        return _check_count("usage_expiration_time", value // _SECOND, MAX_SECONDS)
    return _check_count("usage_expiration_time", value, MAX_SECONDS)


def _grant(name: str, value: object) -> dict[str, Any]:
    if type(value) is not dict:  # exact dicts, the common case, skip the slower ABC checks
        if isinstance(value, Grant):
            value = value.to_json()
        if not isinstance(value, Mapping):
            raise ValidationError(name, f"expected a Grant or a dict, got {_type_name(value)}")
    grant: dict[str, Any] = {}
    for field, field_value in value.items():
        if type(field) is not str:
            field = _text(field)  # noqa: PLW2901 - the checked name
        if field not in _GRANT_FIELDS:
            raise ValidationError(
                f"{name}.{field}",
                f"unknown grant field; expected one of {', '.join(_GRANT_FIELDS)}",
            )
        if field_value is None:
            continue
        if field == "resources":
            grant[field] = _resources(f"{name}.{field}", field_value)
        elif field_value is True or field_value is False:
            grant[field] = field_value
        else:
            grant[field] = _check_bool(f"{name}.{field}", field_value)
    return grant


def _resources(where: str, value: object) -> list[str]:
    if type(value) is list and all(type(item) is str and item for item in value):
        return value.copy()  # the common case; anything else gets the full checks below
    # A bare string is a sequence too: read as a list of characters, it would grant wrong videos.
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(where, f"expected a list of video tokens, got {_type_name(value)}")
    resources = [_text(item) for item in value]
    for index, item in enumerate(resources):
        if not isinstance(item, str) or not item:
            raise ValidationError(f"{where}[{index}]", "expected a non-empty string")
    return resources


def _grants(value: object) -> dict[str, Any]:
    if type(value) is not dict:  # exact dicts, the common case, skip the slower ABC checks
        if isinstance(value, Grants):
            value = value.to_json()
        if isinstance(value, str):
            raise ValidationError("grants", "expected a dict or Grants, not a JSON string")
        if not isinstance(value, Mapping):
            raise ValidationError("grants", f"expected a dict or Grants, got {_type_name(value)}")
    grants: dict[str, Any] = {}
    for name, grant in value.items():
        if type(name) is not str:
            name = _text(name)  # noqa: PLW2901 - the checked name
        if name not in GRANT_NAMES:
            raise ValidationError(
                f"grants.{name}", f"unknown grant; expected one of {', '.join(GRANT_NAMES)}"
            )
        if grant is not None:
            grants[name] = _grant(f"grants.{name}", grant)
    return grants


#: Each argument's check; tests/test_one_place.py proves its names are ARGUMENT_NAMES.
_NORMALIZERS = {
    "volatile": lambda value: _check_bool("volatile", value),
    "hidden": lambda value: _check_bool("hidden", value),
    "expiration_date": _expiration_date,
    "usage_expiration_time": _usage_expiration_time,
    "session_limit": lambda value: _check_count("session_limit", value, MAX_SESSION_LIMIT),
    "grants": _grants,
}


def normalize_arguments(arguments: Mapping[str, object]) -> dict[str, Any]:
    """Check the arguments and return them as plain JSON values.

    ``None`` means "not given" and is left out. Raises ``ValidationError`` naming the
    first argument that is unknown or of the wrong type or range. The caller's
    objects are never modified.
    """
    normalized: dict[str, Any] = {}
    for name, value in arguments.items():
        if type(name) is not str:
            name = _text(name)  # noqa: PLW2901 - the checked name
        normalizer = _NORMALIZERS.get(name) if isinstance(name, str) else None
        if normalizer is None:
            raise _unknown_argument(name)
        if value is not None:
            normalized[name] = normalizer(value)
    return normalized


def _unknown_argument(name: object) -> ValidationError:
    return ValidationError(
        str(name), f"unknown argument; expected one of {', '.join(ARGUMENT_NAMES)}"
    )


def check_argument_names(arguments: Mapping[Any, object]) -> None:
    """Refuse a mapping that holds a name other than ``ARGUMENT_NAMES``, as
    ``normalize_arguments`` does, before it is spread into a call as keywords: there
    ``timeout`` or ``deadline`` would set the call's own, and ``self`` or a positional
    parameter's name would be a ``TypeError``. For mappings that come as data (the
    legacy module's dicts, the CLI's input lines)."""
    for name in arguments:
        if type(name) is not str:
            name = _text(name)  # noqa: PLW2901 - the checked name
        if not isinstance(name, str) or name not in _NORMALIZERS:
            raise _unknown_argument(name)


def json_writer(*, item_separator: str, key_separator: str) -> Callable[[Any], str]:
    """``json.dumps`` with ASCII-only output and these separators, for normalized values.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs more than
    encoding the small objects here; this makes json's own C encoder once (no circular
    check: normalized values are trees this module built). Where the accelerator is
    missing or its signature differs, it is ``JSONEncoder.encode``, same output.
    """
    encoder = json.JSONEncoder(separators=(item_separator, key_separator))
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:
        return encoder.encode
    try:
        encode_chunks = make_encoder(
            None,
            encoder.default,
            json.encoder.encode_basestring_ascii,
            None,
            key_separator,
            item_separator,
            False,  # noqa: FBT003 - sort_keys: the caller's order is kept
            False,  # noqa: FBT003 - skipkeys
            True,  # noqa: FBT003 - allow_nan, json.dumps's default
        )
    except TypeError:
        return encoder.encode
    return lambda value: "".join(encode_chunks(value, 0))


_COMPACT_JSON = json_writer(item_separator=",", key_separator=":")


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # grants: the PHP, Ruby, Java and C# SDKs all send the nested object as JSON text.
    return _COMPACT_JSON(value)


# What urlencode's quote_plus does to each ASCII character, as one translate table:
# unreserved characters stay, a space becomes "+", everything else "%XX".
_FORM_ESCAPES = str.maketrans(
    {code: "+" if code == 0x20 else quote_plus(chr(code)) for code in range(0x80)}  # noqa: PLR2004 - the space
)


def encode_form(normalized: Mapping[str, Any]) -> bytes:
    """The form body for arguments already passed through ``normalize_arguments``, as the
    bytes sent: encoded here once, handed down to the HTTP layer as they are.

    The same text ``urlencode`` writes; faster, because every name and value here is
    ASCII (names are the documented ones, grants are ASCII-only JSON), so one
    ``str.translate`` per value does what ``quote_plus`` does character by character.
    """
    return "&".join(
        f"{name}={_form_value(value).translate(_FORM_ESCAPES)}"
        for name, value in normalized.items()
    ).encode("ascii")


def check_batch_items(argument: str, items: object) -> None:
    """A batch's input: an iterable or async iterable of items, checked when the batch is
    made. A string, bytes or a mapping is iterable too, as characters, ints or keys: a
    batch over one would send a request per piece, so it is refused."""
    if isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(
        items, (Iterable, AsyncIterable)
    ):
        raise ValidationError(
            argument, f"expected an iterable or async iterable of items, got {_type_name(items)}"
        )


def path_segment(argument: str, value: object) -> str:
    """A token id or key, percent-encoded as one path segment.

    Refuses ``""``, ``.``, ``..`` and control characters: httpx normalises dot
    segments away after quoting, so quoting alone would not stop a traversal. Refuses
    more than ``MAX_TOKEN_ID_CHARS`` characters.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            raise ValidationError(argument, f"expected a string, got {_type_name(value)}")
        value = str.__str__(value)  # its text (see _text); quote() calls its encode too
    if value in ("", ".", ".."):
        raise ValidationError(argument, f"{value!r} is not a token id")
    if len(value) > MAX_TOKEN_ID_CHARS:
        raise ValidationError(
            argument, f"has {len(value)} characters; at most {MAX_TOKEN_ID_CHARS} are accepted"
        )
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:  # noqa: PLR2004 - the C0 and C1 control ranges
            raise ValidationError(argument, f"contains the control character U+{code:04X}")
        if 0xD800 <= code <= 0xDFFF:  # noqa: PLR2004 - has no UTF-8 form, so no URL form
            raise ValidationError(argument, f"contains the lone surrogate U+{code:04X}")
    return quote(value, safe="")
