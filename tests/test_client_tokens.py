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


def reference_token(cipher: ClientTokenCipher, key: str, plaintext: bytes, iv: bytes) -> str:
    """AES-CBC the plain way, with a fresh Cipher for the one token."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    derived = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest().encode()
    size = 16 - len(plaintext) % 16
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    padded = plaintext + bytes([size]) * size
    return iv.decode() + (encryptor.update(padded) + encryptor.finalize()).hex()


def test_the_shared_encryptor_matches_a_fresh_cipher_token_after_token() -> None:
    key = "chaining-key"
    cipher = ClientTokenCipher("app", key)
    for number in range(40):
        plaintext = b"x" * number + "é".encode()  # every padding length, several blocks
        iv = f"{number:016x}".encode()
        assert cipher.encrypt(plaintext, iv) == reference_token(cipher, key, plaintext, iv)


def test_generate_writes_the_payload_json_dumps_would_write() -> None:
    client = AsyncZiggeo('app-\u00e9"token', "private", "k")
    arguments: dict[str, Any] = {
        "grants": {"read": {"resources": ["v\u00fc1", 'q"uote'], "all": False}},
        "volatile": True,
        "session_limit": 0,
    }
    token = client.auth.generate(**arguments)
    plaintext = client.auth._require_cipher().decrypt(token)
    nonce = json.loads(plaintext)["nonce"]
    expected = {**arguments, "application_token": 'app-\u00e9"token', "nonce": nonce}
    assert plaintext == json.dumps(expected, ensure_ascii=True).encode("ascii")
    empty = client.auth._require_cipher().decrypt(client.auth.generate())
    assert json.loads(empty).keys() == {"application_token", "nonce"}


def test_tokens_made_from_many_threads_all_decode() -> None:
    import threading

    client = AsyncZiggeo("app", "private", "threads-key")
    made: list[str] = []

    def work() -> None:
        made.extend(client.auth.generate(session_limit=3) for _ in range(300))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1200
    assert all(client.auth.decode(token)["session_limit"] == 3 for token in made)


def test_generate_many_with_a_count_gives_distinct_decodable_tokens() -> None:
    client = AsyncZiggeo("app", "private", "many-key")
    tokens = client.auth.generate_many(50, grants={"create": {"session_owned": True}})
    assert len(tokens) == 50
    payloads = [client.auth.decode(token) for token in tokens]
    assert all(payload["grants"] == {"create": {"session_owned": True}} for payload in payloads)
    assert all(payload["application_token"] == "app" for payload in payloads)
    assert len({token[:16] for token in tokens}) == 50  # each its own IV
    assert len({payload["nonce"] for payload in payloads}) == 50  # and its own nonce
    assert client.auth.generate_many(0) == []


def test_generate_many_with_items_gives_one_token_per_item_in_order() -> None:
    client = AsyncZiggeo("app", "private", "many-key")
    items = ({"session_limit": number} for number in range(5))
    tokens = client.auth.generate_many(items)
    assert [client.auth.decode(token)["session_limit"] for token in tokens] == list(range(5))


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda auth: auth.generate_many(-1), "count"),
        (lambda auth: auth.generate_many(True), "count_or_items"),
        (lambda auth: auth.generate_many("abc"), "count_or_items"),
        (lambda auth: auth.generate_many([{"session_limit": 1}, 7]), "items[1]"),
        (lambda auth: auth.generate_many([{}, {"session_limit": -1}]), "items[1].session_limit"),
        (lambda auth: auth.generate_many([{"colour": 1}]), "items[0].colour"),
        (lambda auth: auth.generate_many([{}], session_limit=1), "session_limit"),
        (lambda auth: auth.generate_many(2, session_limit="1"), "session_limit"),
    ],
)
def test_generate_many_refuses_bad_input_naming_it(call: Any, argument: str) -> None:
    auth = AsyncZiggeo("app", "private", "many-key").auth
    with pytest.raises(ValidationError) as caught:
        call(auth)
    assert caught.value.argument == argument


def test_generate_many_without_encryption_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="encryption key"):
        AsyncZiggeo("app-token", "private").auth.generate_many(2)
