"""``client.auth``: client auth tokens made locally, with no network call."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._core.arguments import TokenArguments, normalize_arguments, plain_number
from .._core.cipher import ClientTokenCipher
from .._core.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["MAX_TOKENS_AT_ONCE", "Auth"]

#: The most tokens one ``generate_many`` call makes (about 200 MB of strings); call it
#: again for more. Beyond it the randomness alone would not fit (``OverflowError``).
MAX_TOKENS_AT_ONCE = 1_000_000


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
        cipher = self._cipher or self._require_cipher()
        return cipher.generate(normalize_arguments(arguments))

    def generate_many(
        self,
        count_or_items: int | Iterable[Mapping[str, Any]],
        /,
        **arguments: Unpack[TokenArguments],
    ) -> list[str]:
        """Many client auth tokens at once, each with its own IV and nonce.

        ``generate_many(100, grants=...)`` makes 100 tokens with the same arguments;
        ``generate_many([{...}, {...}])`` one token per mapping of ``generate``'s
        arguments. Everything is checked before any token is made (a bad item raises
        ``ValidationError`` naming ``items[i].argument``). Faster than a loop of
        ``generate``: the arguments' JSON is built once per distinct item and the
        randomness comes from one system call.
        """
        cipher = self._require_cipher()
        if isinstance(count_or_items, int) and not isinstance(count_or_items, bool):
            count = plain_number(count_or_items)
            if not 0 <= count <= MAX_TOKENS_AT_ONCE:
                raise ValidationError("count", f"must be from 0 to {MAX_TOKENS_AT_ONCE}")
            head = cipher.payload_head(normalize_arguments(arguments))
            return cipher.generate_many(itertools.repeat(head, count), count)
        if arguments:
            raise ValidationError(
                next(iter(arguments)), "keyword arguments go with a count, not with items"
            )
        if isinstance(count_or_items, (str, bytes, Mapping)) or not isinstance(
            count_or_items, Iterable
        ):
            raise ValidationError(
                "count_or_items",
                f"expected a count or an iterable of argument mappings, "
                f"got {type(count_or_items).__name__}",
            )
        heads = [_item_head(cipher, index, item) for index, item in enumerate(count_or_items)]
        return cipher.generate_many(heads, len(heads))

    def decode(self, token: str) -> dict[str, Any]:
        """The JSON payload of a client auth token made with this client's key and app token.

        For inspection and tests. Anything else raises ``ValidationError`` with one
        message, whatever was wrong (format, padding, JSON, key, application), so the
        error reveals nothing about the token.
        """
        return self._require_cipher().decode(token)


def _item_head(cipher: ClientTokenCipher, index: int, item: object) -> bytes:
    if not isinstance(item, Mapping):
        raise ValidationError(
            f"items[{index}]", f"expected a mapping of arguments, got {type(item).__name__}"
        )
    try:
        return cipher.payload_head(normalize_arguments(item))
    except ValidationError as error:
        raise ValidationError(f"items[{index}].{error.argument}", error.reason) from None
