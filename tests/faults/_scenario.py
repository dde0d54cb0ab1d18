"""One scenario runner for every fault source: call, then check what the store recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from tests._servers import TokenStore
from ziggeo_async import AsyncZiggeo, AuthToken

from ._support import LEDGER, Outcome, RecordingPolicy

SEEDED = "seededtoken0001"
SEED_FIELDS = {"session_limit": 1, "grants": {"read": {"all": True}}}

CALLS: dict[str, Callable[[AsyncZiggeo], Awaitable[Any]]] = {
    "create": lambda client: client.authtokens.create(
        session_limit=3, grants={"read": {"resources": ["v1"]}}
    ),
    "get": lambda client: client.authtokens.get(SEEDED),
    "update": lambda client: client.authtokens.update(SEEDED, session_limit=9),
    "delete": lambda client: client.authtokens.delete(SEEDED),
}


@attrs.frozen
class Expected:
    """What a scenario must end in: the result or error type, attempts, delays, tokens made."""

    error: type[Exception] | None
    attempts: int
    delays: tuple[float, ...] | None = None  # None: only the policy's bound is checked
    created: int = 0  # create only: tokens the store must hold afterwards


def check_outcome(
    operation: str,
    outcome: Outcome,
    expected: Expected,
    policy: RecordingPolicy,
    store: TokenStore,
) -> None:
    """Typed result, attempts, sleeps within bound, and the store: nothing lost or doubled."""
    if expected.error is None:
        assert outcome.error is None, f"expected success, got {outcome.error!r}"
    else:
        assert type(outcome.error) is expected.error, f"got {outcome.error!r}"
    assert policy.attempts == expected.attempts
    assert sum(policy.delays) <= policy.sleep_bound()
    if expected.delays is not None:
        assert policy.delays == list(expected.delays)
    check_store(operation, outcome, expected, store)


def check_store(operation: str, outcome: Outcome, expected: Expected, store: TokenStore) -> None:
    succeeded = outcome.error is None
    if operation == "create":
        created = len(store.created)
        LEDGER.duplicated += max(0, created - 1)
        returned_but_missing = succeeded and outcome.result.token not in store.tokens
        made_but_said_none = created > expected.created
        LEDGER.lost += int(returned_but_missing) + int(created < expected.created)
        assert not returned_but_missing, "create returned a token the store does not have"
        assert not made_but_said_none, f"create made {created} tokens"
        assert created == expected.created
        if succeeded:
            assert isinstance(outcome.result, AuthToken)
            assert store.tokens[outcome.result.token]["session_limit"] == 3
        return
    # The seeded token is the only one; nothing may be created by get/update/delete.
    assert store.created == []
    if operation == "delete":
        LEDGER.duplicated += max(0, len(store.deleted) - 1)
        assert len(store.deleted) <= 1
        if succeeded:
            assert outcome.result is None
            assert SEEDED not in store.tokens
        return
    LEDGER.lost += int(SEEDED not in store.tokens)
    assert SEEDED in store.tokens
    if succeeded:
        assert isinstance(outcome.result, AuthToken)
        assert outcome.result.token == SEEDED
    if operation == "update" and succeeded:
        assert store.tokens[SEEDED]["session_limit"] == outcome.result.session_limit == 9
    if operation == "get":
        assert store.tokens[SEEDED] == {"token": SEEDED, **SEED_FIELDS}
