"""The canary harness itself: a secret planted anywhere it searches is found."""

from __future__ import annotations

import logging

import anyio
import pytest

from tests.faults._support import (
    BASIC_CREDENTIALS,
    ENCRYPTION_KEY,
    PRIVATE_KEY,
    Canary,
    make_client,
)


class _Holder:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"<Holder {self.secret}>"


class _SecretCarryingError(Exception):
    def __init__(self, message: str, secret: str) -> None:
        super().__init__(message)
        self.secret = secret


def _raised_from(cause: BaseException) -> Exception:
    error = ValueError("outer, innocent")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "plant",
    [
        "log record",
        "exception message",
        "exception attribute",
        "cause chain",
        "context chain",
        "repr",
    ],
)
def test_a_planted_secret_is_found(plant: str, canary: Canary) -> None:
    planted = Canary()
    if plant == "log record":
        planted.records.append(
            logging.LogRecord("httpx", logging.DEBUG, __file__, 1, "sent %s", (PRIVATE_KEY,), None)
        )
    elif plant == "exception message":
        planted.watch(RuntimeError(f"Authorization: Basic {BASIC_CREDENTIALS}"))
    elif plant == "exception attribute":
        planted.watch(_SecretCarryingError("innocent", ENCRYPTION_KEY))
    elif plant == "cause chain":
        planted.watch(_raised_from(KeyError(PRIVATE_KEY)))
    elif plant == "context chain":
        error = ValueError("while handling it")
        error.__context__ = KeyError(ENCRYPTION_KEY)
        error.__suppress_context__ = True  # hidden from tracebacks, still reachable
        planted.watch(error)
    else:
        planted.objects.append(_Holder(BASIC_CREDENTIALS))
    assert planted.hits()


def test_clean_material_is_not_flagged(canary: Canary) -> None:
    clean = Canary()
    client, _policy = make_client(clean, "https://x.test")
    clean.watch(_raised_from(KeyError("no secret here")))
    clean.records.append(logging.LogRecord("ziggeo_async", 10, __file__, 1, "ok", (), None))
    assert clean.hits() == []
    assert repr(client)
    anyio.run(client.aclose)  # an unclosed client warns when collected
