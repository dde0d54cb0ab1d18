from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ziggeo_async import (
    AsyncZiggeo,
    ConfigurationError,
    Grant,
    Grants,
    ValidationError,
    WeakEncryptionKeyWarning,
)
from ziggeo_async._core.cipher import ClientTokenCipher

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "client-auth-tokens.json").read_text("utf-8")
)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["iv"])
def test_golden_vector_encrypts_and_decrypts(vector: dict[str, Any]) -> None:
    cipher = ClientTokenCipher("app", vector["encryption_key"])
    plaintext = vector["plaintext_utf8"].encode("utf-8")
    assert cipher.encrypt(plaintext, vector["iv"]) == vector["token"]
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
        assert cipher.encrypt(plaintext, iv.decode()) == reference_token(cipher, key, plaintext, iv)


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


def test_generate_never_mutates_the_callers_objects() -> None:
    client = AsyncZiggeo("app-token", "private", "encryption-key")
    resources = ["v1", "v2"]
    grants: dict[str, dict[str, Any]] = {
        "read": {"resources": resources},
        "destroy": {"session_owned": True},
    }
    snapshot = copy.deepcopy(grants)
    typed = Grants(read=Grant(resources=resources), create=Grant(all=True))
    typed_snapshot = copy.deepcopy(typed)
    client.auth.generate(grants=grants, session_limit=1)
    client.auth.generate(grants=typed)
    assert grants == snapshot
    assert grants["read"]["resources"] is resources
    assert resources == ["v1", "v2"]
    assert typed == typed_snapshot
    payload = client.auth.decode(client.auth.generate(grants=grants))
    payload["grants"]["read"]["resources"].append("v3")
    assert resources == ["v1", "v2"]


def test_nonce_and_iv_differ_per_token() -> None:
    client = AsyncZiggeo("app-token", "private", "encryption-key")
    tokens = [client.auth.generate(session_limit=1) for _ in range(50)]
    assert len({token[:16] for token in tokens}) == 50
    assert len({client.auth.decode(token)["nonce"] for token in tokens}) == 50
    assert all(re.fullmatch(r"[0-9a-f]{16}(?:[0-9a-f]{32})+", token) for token in tokens)


def test_generate_encodes_arguments_as_the_wire_decides() -> None:
    client = AsyncZiggeo("app-token", "private", "encryption-key")
    token = client.auth.generate(
        volatile=True,
        hidden=False,
        expiration_date=datetime(2030, 3, 17, 17, 46, 40, tzinfo=timezone.utc),
        usage_expiration_time=timedelta(hours=1),
        grants=Grants(read=Grant(resources=["vidé"])),
    )
    cipher = ClientTokenCipher("app-token", "encryption-key")
    plaintext = cipher.decrypt(token)
    assert plaintext.isascii()
    assert b"\\u00e9" in plaintext
    payload = json.loads(plaintext)
    assert payload.pop("nonce").isdigit()
    assert payload == {
        "volatile": True,
        "hidden": False,
        "expiration_date": 1_900_000_000,
        "usage_expiration_time": 3600,
        "grants": {"read": {"resources": ["vidé"]}},
        "application_token": "app-token",
    }


@pytest.mark.parametrize(
    "arguments",
    [{"colour": "red"}, {"session_limit": True}, {"grants": {"read": {"resources": "v1"}}}],
)
def test_generate_validates_like_create(arguments: dict[str, Any]) -> None:
    client = AsyncZiggeo("app-token", "private", "encryption-key")
    with pytest.raises(ValidationError):
        client.auth.generate(**arguments)


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


# -- decode: one error, whatever failed (no padding or format oracle) --------------------

DECODE_KEY = "encryption-key-for-the-decode-table"
DECODE_IV = b"0123456789abcdef"


def _encrypted(plaintext: bytes, key: str = DECODE_KEY) -> str:
    return ClientTokenCipher("app-token", key).encrypt(plaintext, DECODE_IV.decode())


def _raw_ciphertext(blocks: bytes) -> str:
    """Whole blocks through AES-CBC with no padding added: any padding byte can be forged."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    derived = hashlib.md5(DECODE_KEY.encode(), usedforsecurity=False).hexdigest().encode()
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(DECODE_IV)).encryptor()
    return DECODE_IV.decode() + (encryptor.update(blocks) + encryptor.finalize()).hex()


BROKEN_TOKENS: dict[str, object] = {
    "empty": "",
    "not hex": "not a token",
    "IV only": DECODE_IV.decode(),
    "half a block": DECODE_IV.decode() + "00" * 8,
    "upper-case hex": DECODE_IV.decode().upper() + "00" * 16,
    "hex digits then z": DECODE_IV.decode() + "zz" * 16,
    "leading space": " " + _encrypted(b'{"a": 1}'),
    "trailing newline": _encrypted(b'{"a": 1}') + "\n",
    "padding byte 0": _raw_ciphertext(b"A" * 15 + b"\x00"),
    "padding byte 17": _raw_ciphertext(b"A" * 15 + b"\x11"),
    "padding bytes unequal": _raw_ciphertext(b"A" * 14 + b"\x01\x02"),
    "padding removed": _encrypted(b"A" * 16)[:-32],
    "not UTF-8": _encrypted(b"\xff\xfe"),
    "not JSON": _encrypted(b"not json"),
    "JSON, not an object": _encrypted(b"[1, 2]"),
    "JSON nested without end": _encrypted(b"[" * 100_000 + b"]" * 100_000),
    "another encryption key": _encrypted(
        b'{"application_token": "app-token", "nonce": "1"}', key="another-encryption-key"
    ),
    "another application token": _encrypted(b'{"application_token": "other", "nonce": "1"}'),
    "no application token": _encrypted(b'{"nonce": "1"}'),
    "an int": 5,
    "None": None,
    "bytes": DECODE_IV + b"00" * 16,
    "a million hex digits": DECODE_IV.decode() + "0" * 1_000_000,
}


@pytest.mark.parametrize("broken", BROKEN_TOKENS.values(), ids=BROKEN_TOKENS.keys())
def test_decode_of_anything_but_a_valid_token_is_one_error(broken: object) -> None:
    client = AsyncZiggeo("app-token", "private", DECODE_KEY)
    valid = _encrypted(b'{"application_token": "app-token", "nonce": "1"}')
    assert client.auth.decode(valid) == {"application_token": "app-token", "nonce": "1"}
    with pytest.raises(Exception) as caught:  # the exact type is asserted below
        client.auth.decode(broken)  # type: ignore[arg-type]
    error = caught.value
    assert type(error) is ValidationError
    assert str(error) == "token: is not a client auth token of this application and key"
    assert error.args == (str(error),)
    assert error.__cause__ is None
    assert error.__context__ is None
