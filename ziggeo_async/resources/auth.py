"""``client.auth``: client auth tokens made locally, with no network call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._arguments import TokenArguments, normalize_arguments
from .._errors import ConfigurationError
from .._tokens import ClientTokenCipher

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Auth"]


class Auth:
    """Makes and reads client auth tokens (``ziggeo-client-auth`` on the page).

    Plain methods, no I/O: safe to call from any thread or event loop.
    """

    __slots__ = ("_cipher",)

    def __init__(self, cipher: ClientTokenCipher | None) -> None:
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"<Auth {'ready' if self._cipher else 'without an encryption key'}>"

    def _require_cipher(self) -> ClientTokenCipher:
        if self._cipher is None:
            raise ConfigurationError(
                "client auth tokens need an encryption key: pass encryption_key= to the client"
            )
        return self._cipher

    def generate(self, **arguments: Unpack[TokenArguments]) -> str:
        """A new client auth token granting what the arguments say.

        Arguments are checked as for ``authtokens.create``; the token embeds them
        with the application token and a fresh nonce, encrypted with the
        encryption key. Raises ``ConfigurationError`` if the client has no key.
        """
        cipher = self._require_cipher()
        return cipher.generate(normalize_arguments(arguments))

    def decode(self, token: str) -> dict[str, Any]:
        """The JSON payload of a client auth token made with this client's key.

        For inspection and tests; raises ``ValidationError`` if the token is
        malformed or was made with another key.
        """
        return self._require_cipher().decode(token)
