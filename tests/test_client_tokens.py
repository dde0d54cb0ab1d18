from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from ziggeo_async import (
    AsyncZiggeo,
    ConfigurationError,
    ValidationError,
    WeakEncryptionKeyWarning,
)
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


# Short keys on purpose: the point is only that the two keys differ.
@pytest.mark.filterwarnings("ignore::ziggeo_async.WeakEncryptionKeyWarning")
def test_decode_with_another_key_is_refused() -> None:
    token = AsyncZiggeo("a", "p", "key-one").auth.generate(session_limit=1)
    with pytest.raises(ValidationError) as caught:
        AsyncZiggeo("a", "p", "key-two").auth.decode(token)
    assert caught.value.argument == "token"


def test_short_encryption_key_warns_once_at_construction() -> None:
    with pytest.warns(WeakEncryptionKeyWarning, match="15 characters") as caught:
        client = AsyncZiggeo("app-token", "private", "x" * 15)
    assert len(caught) == 1
    assert caught[0].filename == __file__  # points at the caller's line
    assert "x" * 15 not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.auth.decode(client.auth.generate(session_limit=1))


@pytest.mark.parametrize("encryption_key", [None, "k" * 16, "a long random key of many characters"])
def test_no_warning_without_a_key_or_with_a_long_one(encryption_key: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncZiggeo("app-token", "private", encryption_key)


def test_weak_key_warning_is_a_user_warning() -> None:
    assert issubclass(WeakEncryptionKeyWarning, UserWarning)
