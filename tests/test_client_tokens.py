from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ziggeo_async import AsyncZiggeo, ConfigurationError, ValidationError
from ziggeo_async._tokens import ClientTokenCipher

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "client-auth-tokens.json").read_text("utf-8")
)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["iv"])
def test_golden_vector_encrypts_and_decrypts(vector: dict[str, Any]) -> None:
    cipher = ClientTokenCipher("app", vector["encryption_key"])
    plaintext = vector["plaintext_utf8"].encode("utf-8")
    assert cipher.encrypt(plaintext, vector["iv"].encode("ascii")) == vector["token"]
    assert cipher.decrypt(vector["token"]) == plaintext


def test_generate_round_trips_through_decode() -> None:
    client = AsyncZiggeo("app-token", "private", "encryption-key-0123456789")
    token = client.auth.generate(session_limit=2, grants={"read": {"resources": ["v1"]}})
    payload = client.auth.decode(token)
    assert payload["application_token"] == "app-token"
    assert payload["session_limit"] == 2
    assert payload["grants"] == {"read": {"resources": ["v1"]}}
    assert payload["nonce"].isdigit()


def test_generate_without_encryption_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="encryption key"):
        AsyncZiggeo("app-token", "private").auth.generate(session_limit=1)


def test_decode_with_another_key_is_refused() -> None:
    token = AsyncZiggeo("a", "p", "key-one").auth.generate(session_limit=1)
    with pytest.raises(ValidationError) as caught:
        AsyncZiggeo("a", "p", "key-two").auth.decode(token)
    assert caught.value.argument == "token"
