"""A drop-in for code written against the official ``ziggeo`` package, on ``SyncZiggeo``.

Same shape as the official Python SDK's auth-token API::

    ziggeo = Ziggeo(app_token, private_key, encryption_key)
    ziggeo.authtokens().create({"session_limit": 1, "grants": '{"read": "all"}'})  # -> dict
    ziggeo.authtokens().get(token)                 # -> dict
    ziggeo.authtokens().update(token_or_key, data) # -> dict
    ziggeo.authtokens().delete(token_or_key)       # -> None
    ziggeo.auth().generate(options)                # -> str

Arguments are taken as the official SDK took them, form strings included
(``"session_limit": "1"``, ``"volatile": "true"``; see ``official_arguments``).
Only auth tokens are provided: ``videos()``, ``config`` and the rest of the official
class raise ``AttributeError`` saying so, when read and when set (``ziggeo.token = ...``).

Differences, on purpose: a failure raises the typed error (``NotFoundError``,
``ValidationError``, ...) where the official SDK returned an error dict or string;
``generate`` never modifies the caller's dict; arguments are checked before
anything is sent; and the client holds a thread, so ``close()`` it (or use ``with``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx2

from ._core.arguments import COUNT_ARGUMENTS, FLAG_ARGUMENTS, check_argument_names
from ._core.errors import ValidationError
from ._faces.sync import SyncZiggeo

__all__ = [
    "OFFICIAL_ONLY",
    "Ziggeo",
    "ZiggeoAuth",
    "ZiggeoAuthtokens",
    "official_arguments",
    "official_grants",
]


_BOOL_FIELDS = frozenset(FLAG_ARGUMENTS)
_INT_FIELDS = frozenset(COUNT_ARGUMENTS)
_TRUE_TEXTS = frozenset(("true", "1"))
_FALSE_TEXTS = frozenset(("false", "0"))
# Longer than any count the API can mean; refused before int() reads it (int() of more
# than 4,300 digits raises ValueError).
_MAX_DIGITS = 20
#: What the official ``Ziggeo`` class has that this drop-in does not provide.
OFFICIAL_ONLY = frozenset(
    (
        "videos",
        "streams",
        "audios",
        "audioStreams",
        "application",
        "effectProfiles",
        "effectProfileProcess",
        "metaProfiles",
        "metaProfileProcess",
        "webhooks",
        "analytics",
        "config",
        "connect",
        "api_connect",
        "cdn_connect",
        "js_cdn_connect",
        "token",
        "private_key",
        "encryption_key",
    )
)


def official_grants(value: object, *, argument: str = "grants") -> object:
    """Grants as the official SDK's callers wrote them, as the typed API takes them.

    A JSON string is parsed (the official demos write ``'{"read": "all"}'``), and the
    demos' shorthand ``{"read": "all"}`` is read as ``{"read": {"all": true}}``.
    Anything else is returned as given, for ``normalize_arguments`` to check.
    Raises ``ValidationError`` naming ``argument`` for text that is not a JSON object.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested without end
            raise ValidationError(argument, "is a string but not valid JSON") from None
        if not isinstance(value, dict):
            raise ValidationError(argument, "is JSON but not an object")
    if isinstance(value, Mapping):
        return {key: {"all": True} if grant == "all" else grant for key, grant in value.items()}
    return value


def _official_bool(name: str, value: object) -> object:
    # The official SDK wrote the value into the form as given: True as "True", 1 as "1".
    if isinstance(value, str) and value.lower() in _TRUE_TEXTS | _FALSE_TEXTS:
        return value.lower() in _TRUE_TEXTS
    if type(value) is int and value in (0, 1):
        return value == 1
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        raise ValidationError(name, "expected True or False (or 'true', 'false', 1, 0)")
    return value


def _official_int(name: str, value: object) -> object:
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
            raise ValidationError(name, "expected a whole number of digits")
        return int(value)
    return value


def official_arguments(data: Mapping[str, Any] | None, *, argument: str = "data") -> dict[str, Any]:
    """The official SDK's argument dict as keyword arguments of the typed API (a copy).

    The one conversion of what the official SDK accepted and sent as form strings:
    ``"session_limit": "1"``, ``"volatile": "true"`` or ``1``, ``"hidden": "false"``,
    grants as a JSON string (see ``official_grants``). Values of other types pass
    through unchanged, and everything is then checked as for ``SyncZiggeo``. A name
    that is no argument (``timeout`` among them) raises ``ValidationError`` naming it.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError(argument, f"expected a dict of arguments, got {type(data).__name__}")
    check_argument_names(data)  # before they become keywords of the typed call
    converted: dict[str, Any] = {}
    for name, value in data.items():
        if name in _BOOL_FIELDS:
            value = _official_bool(name, value)  # noqa: PLW2901 - the converted value
        elif name in _INT_FIELDS:
            value = _official_int(name, value)  # noqa: PLW2901
        elif name == "grants":
            value = official_grants(value)  # noqa: PLW2901
        converted[name] = value
    return converted


def _not_provided(name: str) -> AttributeError:
    what = (
        f"Ziggeo.{name} is part of the official ziggeo SDK"
        if name in OFFICIAL_ONLY
        else f"Ziggeo has no attribute {name!r}"
    )
    return AttributeError(
        f"{what}: ziggeo_async.legacy provides only auth tokens "
        "(authtokens() and auth(), plus close()); keep the official package for the rest"
    )


class ZiggeoAuthtokens:
    """``ziggeo.authtokens()``: the four endpoints, taking and returning plain dicts."""

    __slots__ = ("_client",)

    def __init__(self, client: SyncZiggeo) -> None:
        self._client = client

    def get(self, token: str) -> dict[str, Any]:
        """The auth token as Ziggeo's JSON object."""
        return self._client.authtokens.get(token).to_json()

    def update(self, token_or_key: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Change the arguments in ``data``; the auth token as Ziggeo's JSON object."""
        return self._client.authtokens.update(token_or_key, **official_arguments(data)).to_json()

    def delete(self, token_or_key: str) -> None:
        """Delete the auth token."""
        self._client.authtokens.delete(token_or_key)

    def create(self, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create an auth token from ``data``; the new token as Ziggeo's JSON object."""
        return self._client.authtokens.create(**official_arguments(data)).to_json()


class ZiggeoAuth:
    """``ziggeo.auth()``: client auth tokens, made locally."""

    __slots__ = ("_client",)

    def __init__(self, client: SyncZiggeo) -> None:
        self._client = client

    def generate(self, options: Mapping[str, Any] | None = None) -> str:
        """A client auth token granting ``options``; the caller's dict is left as it was."""
        return self._client.auth.generate(**official_arguments(options, argument="options"))


class Ziggeo:
    """The official SDK's entry point: ``Ziggeo(token, private_key, encryption_key=None)``.

    ``base_url`` and ``http_client`` (keyword-only, not in the official SDK) are passed
    to ``SyncZiggeo``: for a proxy, a test transport, or an in-process stand-in.
    """

    def __init__(
        self,
        token: str,
        private_key: str,
        encryption_key: str | None = None,
        *,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._client = SyncZiggeo(
            token, private_key, encryption_key, base_url=base_url, http_client=http_client
        )
        self._authtokens = ZiggeoAuthtokens(self._client)
        self._auth = ZiggeoAuth(self._client)

    def __repr__(self) -> str:
        return f"<legacy Ziggeo over {self._client!r}>"

    def __getattr__(self, name: str) -> Any:
        # Only called for what the instance lacks: say what the drop-in covers.
        raise _not_provided(name)

    def __setattr__(self, name: str, value: object) -> None:
        # The official SDK read its token, keys, config and connect at every call, so code
        # set them after construction; set here, they would be ignored.
        if name in OFFICIAL_ONLY:
            raise _not_provided(name)
        super().__setattr__(name, value)

    @property
    def client(self) -> SyncZiggeo:
        """The ``SyncZiggeo`` underneath, for code moving to the typed API."""
        return self._client

    def authtokens(self) -> ZiggeoAuthtokens:
        """The auth-token endpoints."""
        return self._authtokens

    def auth(self) -> ZiggeoAuth:
        """Client auth tokens."""
        return self._auth

    def close(self) -> None:
        """Stop the client's portal thread. Idempotent."""
        self._client.close()

    def __enter__(self) -> Ziggeo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
