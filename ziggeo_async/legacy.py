"""A drop-in for code written against the official ``ziggeo`` package, on ``SyncZiggeo``.

Same shape as the official Python SDK's auth-token API::

    ziggeo = Ziggeo(app_token, private_key, encryption_key)
    ziggeo.authtokens().create({"session_limit": 1, "grants": '{"read": "all"}'})  # -> dict
    ziggeo.authtokens().get(token)                 # -> dict
    ziggeo.authtokens().update(token_or_key, data) # -> dict
    ziggeo.authtokens().delete(token_or_key)       # -> None
    ziggeo.auth().generate(options)                # -> str

Differences, on purpose: a failure raises the typed error (``NotFoundError``,
``ValidationError``, ...) where the official SDK returned an error string;
``generate`` never modifies the caller's dict; arguments are checked before
anything is sent; and the client holds a thread, so ``close()`` it (or use ``with``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx2

from ._errors import ValidationError
from ._sync import SyncZiggeo

__all__ = ["Ziggeo", "ZiggeoAuth", "ZiggeoAuthtokens"]


def _arguments(name: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The official SDK's argument dict, as keyword arguments for SyncZiggeo (a copy)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError(name, f"expected a dict of arguments, got {type(data).__name__}")
    arguments = dict(data)
    grants = arguments.get("grants")
    if isinstance(grants, str):
        # The official SDK sends grants as the caller wrote them; its demos write JSON text.
        try:
            grants = json.loads(grants)
        except ValueError:
            raise ValidationError("grants", "is a string but not valid JSON") from None
    if isinstance(grants, Mapping):
        # {"read": "all"} is the official demos' shorthand for {"read": {"all": true}}.
        grants = {key: {"all": True} if value == "all" else value for key, value in grants.items()}
    if grants is not None:
        arguments["grants"] = grants
    return arguments


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
        return self._client.authtokens.update(token_or_key, **_arguments("data", data)).to_json()

    def delete(self, token_or_key: str) -> None:
        """Delete the auth token."""
        self._client.authtokens.delete(token_or_key)

    def create(self, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create an auth token from ``data``; the new token as Ziggeo's JSON object."""
        return self._client.authtokens.create(**_arguments("data", data)).to_json()


class ZiggeoAuth:
    """``ziggeo.auth()``: client auth tokens, made locally."""

    __slots__ = ("_client",)

    def __init__(self, client: SyncZiggeo) -> None:
        self._client = client

    def generate(self, options: Mapping[str, Any] | None = None) -> str:
        """A client auth token granting ``options``; the caller's dict is left as it was."""
        return self._client.auth.generate(**_arguments("options", options))


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
