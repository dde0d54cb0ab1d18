"""The client auth token cipher (``auth.generate``); no I/O.

A client auth token is ``iv + hex(AES-256-CBC(key, iv, PKCS#7(payload)))`` where
``key`` is the 32 ASCII bytes of ``md5(encryption_key).hexdigest()``, ``iv`` is 16
lowercase hex characters from 8 random bytes, and the payload is ASCII-only JSON
of the arguments plus ``application_token`` and ``nonce``. The scheme is Ziggeo's
and has no MAC: see docs on security before relying on its integrity.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import ValidationError

__all__ = ["MIN_ENCRYPTION_KEY_CHARS", "ClientTokenCipher", "WeakEncryptionKeyWarning"]

_BLOCK = 16
_IV_CHARS = 16
_TOKEN_SHAPE = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{32})+")
# Padding for every possible remainder, built once: generate() is a hot path.
_PADDING = tuple(bytes([_BLOCK - size]) * (_BLOCK - size) for size in range(_BLOCK))
_NONCE_RANDOM_BOUND = 10**9
#: Below this many characters an encryption key draws a ``WeakEncryptionKeyWarning``: the
#: AES key is an unsalted MD5 of it, so a short key falls to a dictionary or brute force.
MIN_ENCRYPTION_KEY_CHARS = 16


class WeakEncryptionKeyWarning(UserWarning):
    """The encryption key is short enough to guess; client auth tokens made with it are forgeable.

    Emitted once, when the client is made. Use a long random key (``secrets.token_hex(32)``).
    """


class ClientTokenCipher:
    """Encrypts and decrypts client auth tokens for one application.

    The AES key is derived once here, not per token. The object holds a secret:
    its repr says nothing about it.
    """

    __slots__ = ("_algorithm", "_application_token")

    def __init__(self, application_token: str, encryption_key: str) -> None:
        key = hashlib.md5(encryption_key.encode("utf-8"), usedforsecurity=False).hexdigest()
        self._algorithm = algorithms.AES(key.encode("ascii"))
        self._application_token = application_token

    def __repr__(self) -> str:
        return f"<ClientTokenCipher for {self._application_token!r}>"

    def __reduce__(self) -> Any:
        raise TypeError("ClientTokenCipher holds a secret and does not pickle")

    def encrypt(self, plaintext: bytes, iv: bytes) -> str:
        """Encrypt ``plaintext`` under the 16-byte ASCII ``iv``; returns the token text."""
        padded = plaintext + _PADDING[len(plaintext) % _BLOCK]
        encryptor = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        return iv.decode("ascii") + (encryptor.update(padded) + encryptor.finalize()).hex()

    def generate(self, normalized_arguments: Mapping[str, Any]) -> str:
        """A fresh token for arguments already checked by ``normalize_arguments``."""
        payload = dict(normalized_arguments)
        payload["application_token"] = self._application_token
        payload["nonce"] = f"{int(time.time())}{secrets.randbelow(_NONCE_RANDOM_BOUND)}"
        # ensure_ascii: every server-side decoder reads \\u escapes; not all read raw UTF-8.
        plaintext = json.dumps(payload, ensure_ascii=True).encode("ascii")
        return self.encrypt(plaintext, os.urandom(_IV_CHARS // 2).hex().encode("ascii"))

    def decrypt(self, token: str) -> bytes:
        """The padded-and-checked plaintext bytes of ``token``."""
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise ValidationError(
                "token", "not a client auth token (16 hex IV characters, then whole hex blocks)"
            )
        iv = token[:_IV_CHARS].encode("ascii")
        decryptor = Cipher(self._algorithm, modes.CBC(iv)).decryptor()
        padded = decryptor.update(bytes.fromhex(token[_IV_CHARS:])) + decryptor.finalize()
        size = padded[-1]
        if not 1 <= size <= _BLOCK or padded[-size:] != bytes([size]) * size:
            raise ValidationError("token", "does not decrypt with this encryption key")
        return padded[:-size]

    def decode(self, token: str) -> dict[str, Any]:
        """The JSON payload of ``token`` as a dict."""
        plaintext = self.decrypt(token)
        try:
            payload = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ValidationError("token", "does not decrypt to JSON with this key") from None
        if not isinstance(payload, dict):
            raise ValidationError("token", "does not hold a JSON object")
        return payload
