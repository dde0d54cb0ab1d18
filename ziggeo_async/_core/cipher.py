"""The client auth token cipher (``auth.generate``); no I/O.

A client auth token is ``iv + hex(AES-256-CBC(key, iv, PKCS#7(payload)))`` where
``key`` is the 32 ASCII bytes of ``md5(encryption_key).hexdigest()``, ``iv`` is 16
lowercase hex characters from 8 random bytes, and the payload is ASCII-only JSON
of the arguments plus ``application_token`` and ``nonce``. The scheme is Ziggeo's
and has no MAC: see docs on security before relying on its integrity.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .arguments import json_writer
from .errors import ValidationError

__all__ = [
    "MIN_ENCRYPTION_KEY_CHARS",
    "NOT_A_CLIENT_TOKEN",
    "ClientTokenCipher",
    "WeakEncryptionKeyWarning",
]

_BLOCK = 16
_IV_CHARS = 16
_IV_BYTES = _IV_CHARS // 2
_NONCE_BYTES = 8
_TOKEN_SHAPE = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{32})+")
# Padding for every possible remainder, built once: generate() is a hot path.
_PADDING = tuple(bytes([_BLOCK - size]) * (_BLOCK - size) for size in range(_BLOCK))
_ZERO_BLOCK: Final = bytes(_BLOCK)
# What json.dumps writes by default: ASCII-only, ", " and ": " separators.
_ASCII_JSON: Final = json_writer(item_separator=", ", key_separator=": ")
#: The reason of the one error ``decode`` raises for anything that is not a valid token.
NOT_A_CLIENT_TOKEN: Final = "is not a client auth token of this application and key"  # noqa: S105
#: Below this many characters an encryption key draws a ``WeakEncryptionKeyWarning``: the
#: AES key is an unsalted MD5 of it, so a short key falls to a dictionary or brute force.
MIN_ENCRYPTION_KEY_CHARS = 16


class WeakEncryptionKeyWarning(UserWarning):
    """The encryption key is short enough to guess; client auth tokens made with it are forgeable.

    Emitted once, when the client is made. Use a long random key (``secrets.token_hex(32)``).
    """


class ClientTokenCipher:
    """Encrypts and decrypts client auth tokens for one application.

    Everything that does not depend on the token is made once here: the AES key,
    the JSON text of ``application_token``, and one long-lived CBC encryptor. The
    object holds a secret: its repr says nothing about it.

    Why one encryptor: making a ``Cipher`` and an encryptor per token costs more
    than encrypting the token. A CBC encryptor's state between whole blocks is just
    the last ciphertext block ``c``, so to start a token under a fresh ``iv`` we
    first feed the one block ``D(iv) xor c``: CBC turns it into ``E(D(iv)) = iv``,
    which becomes the chaining value, and that bridge block's output is dropped.
    What follows is byte for byte ``AES-CBC(key, iv, payload)`` (the golden vectors
    check this). A lock keeps the shared state consistent across threads.
    """

    __slots__ = (
        "_algorithm",
        "_application_token",
        "_chain",
        "_decryptor",
        "_encryptor",
        "_lock",
        "_payload_tail",
    )

    def __init__(self, application_token: str, encryption_key: str) -> None:
        key = hashlib.md5(encryption_key.encode("utf-8"), usedforsecurity=False).hexdigest()
        self._algorithm = algorithms.AES(key.encode("ascii"))
        self._application_token = application_token
        # ECB here only ever decrypts a single fresh IV block (see the class docstring).
        self._decryptor = Cipher(self._algorithm, modes.ECB()).decryptor()  # noqa: S305
        self._encryptor = Cipher(self._algorithm, modes.CBC(_ZERO_BLOCK)).encryptor()
        self._chain = 0
        self._lock = threading.Lock()
        # The payload ends with these two fields, in this order, as json.dumps writes them.
        self._payload_tail = (
            f'"application_token": {json.dumps(application_token, ensure_ascii=True)}, "nonce": "'
        ).encode("ascii")

    def __repr__(self) -> str:
        return f"<ClientTokenCipher for {self._application_token!r}>"

    def __reduce__(self) -> Any:
        raise TypeError("ClientTokenCipher holds a secret and does not pickle")

    def encrypt(self, plaintext: bytes, iv: str) -> str:
        """Encrypt ``plaintext`` under ``iv`` (16 hex characters), on the shared encryptor;
        returns the token text."""
        padded = plaintext + _PADDING[len(plaintext) % _BLOCK]
        iv_block = iv.encode("ascii")
        with self._lock:
            bridge = int.from_bytes(self._decryptor.update(iv_block), "big") ^ self._chain
            ciphertext = self._encryptor.update(bridge.to_bytes(_BLOCK, "big") + padded)
            self._chain = int.from_bytes(ciphertext[-_BLOCK:], "big")
        return iv + ciphertext[_BLOCK:].hex()

    def payload_head(self, normalized_arguments: Mapping[str, Any]) -> bytes:
        """The payload up to the nonce's digits; ASCII-only JSON, as json.dumps writes it."""
        if not normalized_arguments:
            return b"{" + self._payload_tail
        # ensure_ascii: every server-side decoder reads \\u escapes; not all read raw UTF-8.
        arguments = _ASCII_JSON(normalized_arguments).encode("ascii")
        return arguments[:-1] + b", " + self._payload_tail

    def _token(self, head: bytes, seconds: bytes, random: bytes) -> str:
        """One token from the payload head and 16 random bytes (IV, then nonce)."""
        iv = random[:_IV_BYTES].hex()
        # The nonce: Unix seconds, then a random integer below 2**63 (as the official SDK).
        plaintext = b'%s%s%d"}' % (head, seconds, int.from_bytes(random[_IV_BYTES:], "big") >> 1)
        return self.encrypt(plaintext, iv)

    def generate(self, normalized_arguments: Mapping[str, Any]) -> str:
        """A fresh token for arguments already checked by ``normalize_arguments``."""
        return self._token(
            self.payload_head(normalized_arguments),
            b"%d" % int(time.time()),
            os.urandom(_IV_BYTES + _NONCE_BYTES),
        )

    def generate_many(self, heads: Iterable[bytes], count: int) -> list[str]:
        """``count`` tokens, one per payload head, with one system call for all the randomness."""
        step = _IV_BYTES + _NONCE_BYTES
        random = os.urandom(step * count)
        seconds = b"%d" % int(time.time())
        return [
            self._token(head, seconds, random[offset : offset + step])
            for head, offset in zip(heads, range(0, step * count, step), strict=True)
        ]

    def decrypt(self, token: str) -> bytes:
        """The padded-and-checked plaintext bytes of ``token``."""
        if isinstance(token, str) and _TOKEN_SHAPE.fullmatch(token):
            iv = token[:_IV_CHARS].encode("ascii")
            decryptor = Cipher(self._algorithm, modes.CBC(iv)).decryptor()
            padded = decryptor.update(bytes.fromhex(token[_IV_CHARS:])) + decryptor.finalize()
            size = padded[-1]
            if 1 <= size <= _BLOCK and padded[-size:] == bytes([size]) * size:
                return padded[:-size]
        raise ValidationError("token", NOT_A_CLIENT_TOKEN)

    def decode(self, token: str) -> dict[str, Any]:
        """The JSON payload of ``token``, an object naming this application.

        Anything else raises the one ``ValidationError``, with the one message and no
        chained cause, whatever failed (shape, padding, UTF-8, JSON, the application
        token), so an error tells a caller nothing about why: no padding oracle. The
        time taken still differs by the failure; do not expose it to untrusted callers
        as a service that answers fast.
        """
        plaintext = self.decrypt(token)
        payload: object = None
        with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            payload = json.loads(plaintext.decode("utf-8"))
        # Raised here, outside every except block, so no failure leaves a __context__.
        if (
            not isinstance(payload, dict)
            or payload.get("application_token") != self._application_token
        ):
            raise ValidationError("token", NOT_A_CLIENT_TOKEN)
        return payload
