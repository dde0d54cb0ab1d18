"""DEBUG logging: one line per attempt, token ids cut short, never a credential."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

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
    # Attempts are DEBUG lines; a retry adds one INFO line (tests/request/test_production.py).
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


def test_every_logger_at_debug_shows_no_secret_and_only_short_ids(
    served_fake: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's and its HTTP stack's loggers at DEBUG, and nothing else set up: all four
    operations, retried failures, an echoed request; no credential in any record, and
    no whole token id."""
    import asyncio

    from ziggeo_async import AsyncZiggeo, NotFoundError, RetryPolicy

    fake, url = served_fake
    names = ("ziggeo_async", "httpx2", "httpcore2", "httpx", "httpcore")
    taken = _without_token_id_filters("httpx2")
    try:
        with caplog.at_level(logging.DEBUG):
            for name in names:
                caplog.set_level(logging.DEBUG, logger=name)

            async def drive() -> list[str]:
                retry = RetryPolicy(max_retries=2, jitter=lambda: 0.0)
                async with AsyncZiggeo(
                    fake.app_token, fake.private_key, base_url=url, retry=retry
                ) as client:
                    token = await client.authtokens.create(session_limit=1)
                    fake.fail_next(1, status=503)
                    await client.authtokens.get(token.token)
                    fake.fail_next(1, status=400, body=f"echo: {fake.private_key}")
                    with pytest.raises(Exception, match="400"):
                        await client.authtokens.update(token.token, session_limit=2)
                    await client.authtokens.delete(token.token)
                    with pytest.raises(NotFoundError):
                        await client.authtokens.get(token.token)
                    return [token.token]

            (token_id,) = asyncio.run(drive())
    finally:
        for token_filter in taken:
            logging.getLogger("httpx2").addFilter(token_filter)
    formatter = logging.Formatter("%(name)s %(message)s")
    texts = [formatter.format(record) for record in caplog.records]
    assert any(text.startswith("httpx2 ") for text in texts)  # its lines were captured
    secrets = (
        fake.private_key,
        base64.b64encode(f"{fake.app_token}:{fake.private_key}".encode()).decode(),
    )
    for text in texts:
        assert token_id not in text, text
        for secret in secrets:
            assert secret not in text, text
    assert any(f"…{token_id[-4:]}" in text for text in texts if text.startswith("httpx2 "))


def _without_token_id_filters(name: str) -> list[logging.Filter]:
    """Take the SDK's filters off logger ``name`` (another test's client may have put them
    there), so a test sees what this client does on its own; returns them for putting back."""
    from ziggeo_async import TokenIdFilter

    logger = logging.getLogger(name)
    taken = [f for f in logger.filters if isinstance(f, TokenIdFilter)]
    for token_filter in taken:
        logger.removeFilter(token_filter)
    return taken


@pytest.mark.parametrize("family", ["httpx2", "httpx"])
def test_the_http_stacks_request_lines_show_only_short_ids_with_no_setup(
    served_fake: tuple[Any, str], caplog: pytest.LogCaptureFixture, family: str
) -> None:
    """httpx2 (and legacy httpx, for a lent client) logs every request at INFO, its URL
    whole: a program that logs at INFO, as many do, and adds nothing else must still see
    token ids cut to their last 4 characters."""
    import asyncio
    import importlib

    from ziggeo_async import AsyncZiggeo

    fake, url = served_fake
    taken = _without_token_id_filters(family)
    try:
        with caplog.at_level(logging.INFO):

            async def drive() -> str:
                lent = None if family == "httpx2" else importlib.import_module(family).AsyncClient()
                async with AsyncZiggeo(
                    fake.app_token, fake.private_key, base_url=url, http_client=lent
                ) as client:
                    token = await client.authtokens.create(session_limit=1)
                    await client.authtokens.get(token.token)
                    await client.authtokens.update(token.token, session_limit=2)
                    await client.authtokens.delete(token.token)
                if lent is not None:
                    await lent.aclose()
                return token.token

            token_id = asyncio.run(drive())
    finally:
        for token_filter in taken:
            logging.getLogger(family).addFilter(token_filter)
    lines = [record.getMessage() for record in caplog.records if record.name == family]
    assert len(lines) == 4, lines  # its request lines were captured
    for line in lines:
        assert token_id not in line, line
    assert sum(f"/v1/authtokens/…{token_id[-4:]}" in line for line in lines) == 3, lines
