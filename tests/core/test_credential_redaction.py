"""Credentials a server echoes into a body are cut out in every form it plausibly writes them."""

from __future__ import annotations

import base64
import html
import json
import pickle
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile._profiles import HOSTILE
from ziggeo_async import APIResponseValidationError, AsyncZiggeo, BadRequestError
from ziggeo_async._core.errors import BODY_EXCERPT_CHARS
from ziggeo_async._core.redaction import REDACTED, credential_texts, redact_body

pytestmark = pytest.mark.anyio

APP_TOKEN = "app-token"
PRIVATE_KEY = "prïvate/key+that=must not-leak"
PAIR = f"{APP_TOKEN}:{PRIVATE_KEY}"
CREDENTIALS = base64.b64encode(PAIR.encode()).decode()
AUTHORIZATION = f"Basic {CREDENTIALS}"
# A character no generated credential or body holds, put where each marker was.
SENTINEL = "\ue000"


def _wrapped(text: str, width: int, newline: str) -> str:
    return newline.join(text[i : i + width] for i in range(0, len(text), width))


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


#: name -> (body bytes, declared charset), each holding the credentials in one form.
FORMS: dict[str, Callable[[str, str, str], tuple[bytes, str | None]]] = {
    "header as sent": lambda pair, key, auth: (f"you sent {auth}".encode(), "utf-8"),
    "base64 unpadded": lambda pair, key, auth: (auth.rstrip("=").encode(), None),
    "header percent-encoded": lambda pair, key, auth: (quote(auth, safe="").encode(), None),
    "header percent-encoded, lower hex": lambda pair, key, auth: (
        _lower_hex(quote(auth, safe="")).encode(),
        None,
    ),
    "pair as a form value": lambda pair, key, auth: (f"u={quote_plus(pair)}".encode(), None),
    "password alone": lambda pair, key, auth: (f"key={key}".encode(), "utf-8"),
    "password percent-encoded": lambda pair, key, auth: (quote(key, safe="").encode(), None),
    "pair": lambda pair, key, auth: (pair.encode(), "utf-8"),
    "base64 wrapped at 4 by LF": lambda pair, key, auth: (_wrapped(auth, 4, "\n").encode(), None),
    "base64 wrapped at 5 by CRLF": lambda pair, key, auth: (
        _wrapped(auth, 5, "\r\n").encode(),
        None,
    ),
    "base64 folded as a header": lambda pair, key, auth: (
        _wrapped(auth, 7, "\r\n  ").encode(),
        None,
    ),
    "password wrapped at 1": lambda pair, key, auth: (_wrapped(key, 1, "\n").encode(), None),
    "JSON, ASCII-only": lambda pair, key, auth: (
        json.dumps({"headers": {"authorization": auth}, "key": key}).encode(),
        "utf-8",
    ),
    "JSON with escaped slashes": lambda pair, key, auth: (
        json.dumps({"authorization": auth, "key": key}).replace("/", "\\/").encode(),
        None,
    ),
    "HTML-escaped": lambda pair, key, auth: (
        html.escape(f"<p>{pair}</p>").encode("ascii", "xmlcharrefreplace"),
        "utf-8",
    ),
    "UTF-16 declared": lambda pair, key, auth: (f"{auth} {key}".encode("utf-16"), "utf-16"),
    "UTF-16-BE declared": lambda pair, key, auth: (
        f"{auth} {key}".encode("utf-16-be"),
        "utf-16-be",
    ),
    "UTF-16 declared as UTF-8": lambda pair, key, auth: (
        f"{auth} {key}".encode("utf-16-le"),
        "utf-8",
    ),
    "UTF-32 undeclared": lambda pair, key, auth: (f"{key}".encode("utf-32"), None),
    "UTF-8 declared as Latin-1": lambda pair, key, auth: (f"{pair}".encode(), "latin-1"),
    "UTF-8 declared as cp1252": lambda pair, key, auth: (f"{key}".encode(), "cp1252"),
    "ASCII declared as UTF-16": lambda pair, key, auth: (auth.encode(), "utf-16"),
    "unknown charset": lambda pair, key, auth: (auth.encode(), "no-such-charset"),
}


def _latin1_forms(pair: str, key: str, auth: str) -> tuple[bytes, str | None] | None:
    try:
        return key.encode("cp1252"), "utf-8"  # a cp1252 page that declares nothing right
    except UnicodeEncodeError:
        return None


def _views(output: str) -> list[str]:
    """The output read back in each way a reader might undo an encoding."""
    cleaned = output.replace(REDACTED, SENTINEL)
    views = [
        cleaned,
        unquote(cleaned),
        unquote_plus(cleaned),
        html.unescape(cleaned),
        re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), cleaned).replace(
            "\\/", "/"
        ),
        re.sub(r"[ \t]*(?:\r\n|\r|\n)[ \t]*|\x00", "", cleaned),
    ]
    views.extend(_read_back_as_utf8(cleaned, charset) for charset in ("latin-1", "cp1252"))
    return views


def _encodable(char: str, charset: str) -> bool:
    try:
        char.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def _read_back_as_utf8(text: str, charset: str) -> str:
    """``text`` written in ``charset`` and read as UTF-8. A character the charset lacks,
    and a byte that is not UTF-8, become the sentinel: not the ``?`` or U+FFFD that
    ``errors="replace"`` writes, which a key may hold."""
    pieces = [""]
    for char in text:
        if _encodable(char, charset):
            pieces[-1] += char
        else:
            pieces.append("")
    return SENTINEL.join(
        piece.encode(charset).decode("utf-8", "surrogateescape") for piece in pieces
    ).translate(_ESCAPED_BYTES_TO_SENTINEL)


# What "surrogateescape" made of each byte that is not UTF-8 (U+DC80 to U+DCFF).
_ESCAPED_BYTES_TO_SENTINEL = dict.fromkeys(range(0xDC80, 0xDD00), SENTINEL)


def _assert_nothing_left(output: str, app_token: str, key: str) -> None:
    pair = f"{app_token}:{key}"
    encoded = base64.b64encode(pair.encode()).decode()
    secrets = {key, pair, encoded.rstrip("="), encoded.rstrip("=").replace("+", "-")}
    for view in _views(output):
        for secret in secrets:
            assert secret not in view, (secret, view)
    # What is left of the key when a wrong decoding lost its non-ASCII characters.
    lossy = re.sub(r"[^\x00-\x7f]", "\ufffd", key)
    assert lossy not in output.replace(REDACTED, SENTINEL), (lossy, output)


def _authorization(app_token: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{app_token}:{key}".encode()).decode()


@pytest.mark.parametrize("form", FORMS)
def test_each_form_of_the_credentials_is_removed(form: str) -> None:
    body, charset = FORMS[form](PAIR, PRIVATE_KEY, AUTHORIZATION)
    output = redact_body(body, charset, credential_texts(AUTHORIZATION))
    _assert_nothing_left(output, APP_TOKEN, PRIVATE_KEY)
    assert REDACTED in output


def test_the_header_keeps_its_scheme_and_the_rest_of_the_body() -> None:
    body = f"<pre>you sent Authorization: {AUTHORIZATION}\r\nHost: x</pre>".encode()
    output = redact_body(body, "utf-8", credential_texts(AUTHORIZATION))
    assert output == f"<pre>you sent Authorization: Basic {REDACTED}\r\nHost: x</pre>"


def test_a_body_without_credentials_is_decoded_as_declared() -> None:
    texts = credential_texts(AUTHORIZATION)
    assert redact_body("Nöt found".encode("utf-16"), "utf-16", texts) == "Nöt found"
    assert redact_body("Nöt found".encode("cp1252"), "cp1252", texts) == "Nöt found"
    assert redact_body(b"\xff\xfe\xfd", None, texts) == "\ufffd\ufffd\ufffd"  # cannot be UTF-8


@pytest.mark.parametrize("key", ["=", "==", "abc=="])
def test_a_key_ending_in_padding_characters_never_matches_the_empty_string(key: str) -> None:
    texts = credential_texts(_authorization("app", key))
    body = f"before {key} after".encode()
    assert redact_body(body, None, texts) == f"before {REDACTED} after"
    assert redact_body(b"nothing here", None, texts) == "nothing here"


def test_credential_texts_are_the_base64_the_pair_and_the_key() -> None:
    assert credential_texts(AUTHORIZATION) == (CREDENTIALS, PAIR, PRIVATE_KEY)
    assert credential_texts("Basic not base64!") == ("not base64!",)


IDENTIFIER_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters=f":{SENTINEL}"), min_size=1, max_size=16
)
BODY_TEXT = st.text(st.characters(codec="utf-8", exclude_characters=SENTINEL), max_size=24)


@HOSTILE
# A key of U+FFFD, and a byte after it that is not UTF-8: reading the output back must not
# make the key out of that byte.
@example(app_token="0", key="\ufffd", form="header as sent", before="", after="\x80")
@given(
    app_token=IDENTIFIER_TEXT,
    key=st.text(st.characters(codec="utf-8", exclude_characters=SENTINEL), min_size=1, max_size=24)
    | st.text("=%&+/ \r\n#;\\", min_size=1, max_size=6),
    form=st.sampled_from([*FORMS, "cp1252 bytes declared as UTF-8"]),
    before=BODY_TEXT,
    after=BODY_TEXT,
)
def test_no_form_of_random_credentials_survives_in_a_random_body(
    app_token: str, key: str, form: str, before: str, after: str
) -> None:
    authorization = _authorization(app_token, key)
    pair = f"{app_token}:{key}"
    made = (
        _latin1_forms(pair, key, authorization)
        if form == "cp1252 bytes declared as UTF-8"
        else FORMS[form](pair, key, authorization)
    )
    if made is None:
        return
    embedded, charset = made
    codec = charset if charset not in (None, "no-such-charset", "utf-16") else "utf-8"
    if form.endswith("declared as UTF-8") or form == "UTF-32 undeclared":
        codec = "utf-8"  # the surrounding text is as the server wrote the rest of the page
    try:
        body = before.encode(codec) + embedded + after.encode(codec)
    except UnicodeEncodeError:
        body = embedded
    output = redact_body(body, charset, credential_texts(authorization))
    _assert_nothing_left(output, app_token, key)
    # Each marker stands for at least one character: nothing matched the empty string.
    assert len(output) <= len(REDACTED) * max(len(body), 1)


# -- through the client: status errors and unusable success bodies ------------------------


def _client(status: int, body: bytes, content_type: str = "text/plain") -> AsyncZiggeo:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncZiggeo(APP_TOKEN, PRIVATE_KEY, base_url="https://x.test", http_client=lent)


@pytest.mark.parametrize("form", FORMS)
async def test_status_error_echoing_credentials_in_any_form_is_cut(form: str) -> None:
    body, charset = FORMS[form](PAIR, PRIVATE_KEY, AUTHORIZATION)
    content_type = "text/plain" if charset is None else f"text/plain; charset={charset}"
    with pytest.raises(BadRequestError) as caught:
        await _client(400, body, content_type).authtokens.get("abc")
    error = caught.value
    for text in (str(error), repr(error), error.body, repr(pickle.dumps(error))):
        _assert_nothing_left(text, APP_TOKEN, PRIVATE_KEY)


async def test_unusable_success_body_echoing_credentials_is_cut() -> None:
    body = quote(f"you sent {AUTHORIZATION}").encode()
    with pytest.raises(APIResponseValidationError) as caught:
        await _client(200, body).authtokens.get("abc")
    assert caught.value.body == f"you%20sent%20Basic%20{REDACTED}"


async def test_the_message_carries_a_bounded_excerpt_the_body_stays_whole() -> None:
    body = ("x" * 10_000 + AUTHORIZATION).encode()
    with pytest.raises(BadRequestError) as caught:
        await _client(400, body).authtokens.get("abc")
    error = caught.value
    assert error.body == "x" * 10_000 + f"Basic {REDACTED}"
    excerpt = "x" * BODY_EXCERPT_CHARS
    assert str(error) == f"GET /v1/authtokens/…abc returned 400: {excerpt + '…'!r}"
    assert BODY_EXCERPT_CHARS == 500


async def test_bodies_without_credentials_are_kept_as_received() -> None:
    with pytest.raises(Exception, match="Not found") as caught:
        await _client(404, b"Not found").authtokens.get("abc")
    assert caught.value.body == "Not found"  # type: ignore[attr-defined]


# A success body whose documented field holds what the request sent: the reason the
# message gives for refusing it quotes the field's value, and must not quote a credential.
@pytest.mark.parametrize(
    "document",
    [
        {"token": "abc", "volatile": PRIVATE_KEY},
        {"token": "abc", "session_limit": AUTHORIZATION},
        {"token": "abc", "grants": {"read": {"all": PAIR}}},
    ],
    ids=["key in a boolean", "header in an integer", "pair in a grant"],
)
async def test_unusable_success_field_echoing_credentials_is_cut_from_the_message(
    document: dict[str, object],
) -> None:
    body = json.dumps(document).encode()
    with pytest.raises(APIResponseValidationError) as caught:
        await _client(200, body, "application/json").authtokens.get("abc")
    error = caught.value
    assert "unusable body" in str(error)
    for text in (str(error), repr(error), error.body, repr(pickle.dumps(error))):
        _assert_nothing_left(text, APP_TOKEN, PRIVATE_KEY)
        # Nor a piece of one: the quoted value is cut short after it was cleaned.
        assert CREDENTIALS[:12] not in text
        assert PRIVATE_KEY[:12] not in text
