"""DEBUG logging: one line per attempt, token ids cut short, never a credential."""

from __future__ import annotations

import base64
import logging
import re

import httpx
import pytest
import respx

from tests._support import APP_TOKEN, COLLECTION_URL, ENCRYPTION_KEY, PRIVATE_KEY, make_client
from ziggeo_async import APIConnectionError

TOKEN = "server-token-9f8e7d6c5b4a3210"
LINE = re.compile(
    r"(?P<method>[A-Z]+) (?P<path>/v1/authtokens/\S*) -> (?P<outcome>\S+) "
    r"\(attempt (?P<attempt>\d+), (?P<ms>\d+\.\d) ms\)"
)
CREDENTIALS = (
    PRIVATE_KEY,
    ENCRYPTION_KEY,
    base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode(),
    "Authorization",
    "authorization",
)


def sdk_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    # Attempts are DEBUG lines; a retry adds one INFO line (tests/test_production.py).
    records = [
        record
        for record in caplog.records
        if record.name == "ziggeo_async" and record.levelno == logging.DEBUG
    ]
    matches = [LINE.fullmatch(record.getMessage()) for record in records]
    assert all(matches), [record.getMessage() for record in records]
    return [match for match in matches if match]


def assert_no_credential(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.__dict__!r}"
        for credential in CREDENTIALS:
            assert credential not in text, (record.name, credential)


@pytest.mark.anyio
async def test_each_attempt_is_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        outcomes: list[httpx.Response | Exception] = [
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json={"token": TOKEN}),
        ]
        router.get(COLLECTION_URL + TOKEN).mock(side_effect=outcomes)
        await client.authtokens.get(TOKEN)
    lines = sdk_lines(caplog)
    assert [(line["method"], line["path"], line["outcome"], line["attempt"]) for line in lines] == [
        ("GET", "/v1/authtokens/…3210", "ConnectError", "1"),
        ("GET", "/v1/authtokens/…3210", "503", "2"),
        ("GET", "/v1/authtokens/…3210", "200", "3"),
    ]
    assert all(float(line["ms"]) >= 0 for line in lines)
    sdk_text = " ".join(r.getMessage() for r in caplog.records if r.name == "ziggeo_async")
    assert TOKEN not in sdk_text
    assert TOKEN[:-4] not in sdk_text
    assert_no_credential(caplog)


@pytest.mark.anyio
async def test_create_update_delete_lines_and_no_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.post(COLLECTION_URL).respond(201, json={"token": TOKEN})
        router.post(COLLECTION_URL + TOKEN).respond(200, json={"token": TOKEN})
        router.delete(COLLECTION_URL + TOKEN).mock(side_effect=httpx.ReadTimeout("slow"))
        await client.authtokens.create(session_limit=1)
        await client.authtokens.update(TOKEN, hidden=True)
        with pytest.raises(APIConnectionError) as caught:
            await client.authtokens.delete(TOKEN)
    assert [(line["method"], line["path"], line["outcome"]) for line in sdk_lines(caplog)] == [
        ("POST", "/v1/authtokens/", "201"),
        ("POST", "/v1/authtokens/…3210", "200"),
        ("DELETE", "/v1/authtokens/…3210", "ReadTimeout"),
    ]
    assert_no_credential(caplog)
    for credential in CREDENTIALS:
        assert credential not in str(caught.value)


@pytest.mark.anyio
async def test_nothing_is_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ziggeo_async")
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        router.get(COLLECTION_URL + TOKEN).respond(200, json={"token": TOKEN})
        await client.authtokens.get(TOKEN)
    assert [r for r in caplog.records if r.name == "ziggeo_async"] == []


# The cut is taken on the path as sent, so a quoted character counts as its escape.
@pytest.mark.parametrize(("token", "shown"), [("ab", "…ab"), ("abcd", "…abcd"), ("a/bcd", "…Fbcd")])
@pytest.mark.anyio
async def test_short_and_quoted_token_ids(
    caplog: pytest.LogCaptureFixture, token: str, shown: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="ziggeo_async")
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        router.get().respond(200, json={"token": token})
        await client.authtokens.get(token)
    (line,) = sdk_lines(caplog)
    assert line["path"] == f"/v1/authtokens/{shown}"
