"""``client.authtokens``: the four auth-token endpoints, thin over the request pipeline.

Each method says which verb and path it uses and reads its own answer
(``AuthToken.from_json``); the pipeline sends, retries and checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._core.arguments import (
    TokenArguments,
    check_batch_items,
    encode_form,
    normalize_arguments,
    path_segment,
    timeout_seconds,
)
from .._core.defaults import DEFAULT_CONCURRENCY
from .._core.errors import ValidationError
from .._core.models import AuthToken
from .._request.batch import BatchRun
from .._request.retry import Operation

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._request.pipeline import RequestPipeline

__all__ = ["AsyncAuthTokens"]

#: Where the auth tokens are; a token's own path appends its id or key.
COLLECTION_PATH: Final = "/v1/authtokens/"


def _checked_batch(
    argument: str, items: object, timeout: float | None, deadline: float | None
) -> tuple[float | None, float | None]:
    """A batch's input, ``timeout`` and ``deadline`` checked when the batch is made, not
    item by item as it runs; the two limits as every item's call takes them."""
    check_batch_items(argument, items)
    return (
        None if timeout is None else timeout_seconds("timeout", timeout),
        None if deadline is None else timeout_seconds("deadline", deadline),
    )


class AsyncAuthTokens:
    """Create, read, change and delete server auth tokens.

    Every method checks its arguments before anything is sent (``ValidationError``),
    retries by the client's policy, and takes ``timeout=`` (seconds, httpx2's per-phase
    timeout: connect, each read, each write) and ``deadline=`` (seconds for the whole
    call, every attempt and wait included) for that call; batches apply both per item.
    """

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    def __repr__(self) -> str:
        return "<AsyncAuthTokens>"

    async def create(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        **arguments: Unpack[TokenArguments],
    ) -> AuthToken:
        """Create an auth token and return it as Ziggeo stored it.

        Never retried once it may have reached Ziggeo, so it cannot issue a duplicate.
        """
        return await self._create(arguments, timeout, deadline)

    def _create(
        self, arguments: Mapping[str, object], timeout: float | None, deadline: float | None
    ) -> Awaitable[AuthToken]:
        """The arguments checked now; the request when awaited. Not a coroutine itself:
        each layer of coroutines is walked again on every suspension of the request."""
        form = encode_form(normalize_arguments(arguments))
        return self._pipeline.send_parsed(
            Operation.CREATE,
            "POST",
            COLLECTION_PATH,
            AuthToken.from_json,
            form=form,
            timeout=timeout,
            deadline=deadline,
        )

    async def get(
        self, token: str, *, timeout: float | None = None, deadline: float | None = None
    ) -> AuthToken:
        """The auth token ``token`` (its token id; keys are not accepted here)."""
        segment = path_segment("token", token)
        return await self._pipeline.send_parsed(
            Operation.GET,
            "GET",
            COLLECTION_PATH,
            AuthToken.from_json,
            segment=segment,
            timeout=timeout,
            deadline=deadline,
        )

    async def update(
        self,
        token_or_key: str,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        **arguments: Unpack[TokenArguments],
    ) -> AuthToken:
        """Change the given arguments of an auth token; return it as Ziggeo stored it."""
        segment = path_segment("token_or_key", token_or_key)
        normalized = normalize_arguments(arguments)
        if not normalized:
            raise ValidationError("arguments", "update needs at least one argument to change")
        return await self._pipeline.send_parsed(
            Operation.UPDATE,
            "POST",
            COLLECTION_PATH,
            AuthToken.from_json,
            segment=segment,
            form=encode_form(normalized),
            timeout=timeout,
            deadline=deadline,
        )

    async def delete(
        self, token_or_key: str, *, timeout: float | None = None, deadline: float | None = None
    ) -> None:
        """Delete an auth token.

        A 404 on a retry counts as done only if an earlier attempt may have deleted
        it; after attempts that surely did nothing (connect failure, 429, 503) it
        raises ``NotFoundError``.
        """
        segment = path_segment("token_or_key", token_or_key)
        await self._pipeline.send(
            Operation.DELETE,
            "DELETE",
            COLLECTION_PATH,
            segment=segment,
            timeout=timeout,
            deadline=deadline,
        )

    async def destroy(
        self, token_or_key: str, *, timeout: float | None = None, deadline: float | None = None
    ) -> None:
        """Alias of ``delete``, under the name the Node SDK uses."""
        await self.delete(token_or_key, timeout=timeout, deadline=deadline)

    def create_many(
        self,
        items: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_per_second: float | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> BatchRun[AuthToken, Mapping[str, Any]]:
        """Create one auth token per item (a mapping of ``create``'s arguments).

        Yields a ``BatchResult`` per item as it completes; a bad item or a failed
        request becomes a result with its error and the batch goes on. At most
        ``concurrency`` requests are in flight, started at most ``max_per_second``
        a second. Use it as ``async with ... as results: async for result in results``.
        """

        timeout, deadline = _checked_batch("items", items, timeout, deadline)

        # The item operations return the awaitable rather than awaiting it (see _create);
        # the batch calls and awaits them in one step, so what they raise is the item's.
        def create_item(index: int, item: Mapping[str, Any]) -> Awaitable[AuthToken]:
            if not isinstance(item, Mapping):
                # The type, not a repr: repr() of an item nested without end recurses.
                raise ValidationError(
                    f"items[{index}]",
                    f"expected a mapping of create arguments, got {type(item).__name__}",
                )
            return self._create(item, timeout, deadline)

        return BatchRun(items, create_item, concurrency=concurrency, max_per_second=max_per_second)

    def get_many(
        self,
        tokens: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_per_second: float | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> BatchRun[AuthToken, str]:
        """``get`` each token; results as for ``create_many``."""

        timeout, deadline = _checked_batch("tokens", tokens, timeout, deadline)

        def get_item(_index: int, token: str) -> Awaitable[AuthToken]:
            return self.get(token, timeout=timeout, deadline=deadline)

        return BatchRun(tokens, get_item, concurrency=concurrency, max_per_second=max_per_second)

    def delete_many(
        self,
        tokens_or_keys: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_per_second: float | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> BatchRun[None, str]:
        """``delete`` each token or key; results as for ``create_many`` (value ``None``)."""

        timeout, deadline = _checked_batch("tokens_or_keys", tokens_or_keys, timeout, deadline)

        def delete_item(_index: int, token_or_key: str) -> Awaitable[None]:
            return self.delete(token_or_key, timeout=timeout, deadline=deadline)

        return BatchRun(
            tokens_or_keys, delete_item, concurrency=concurrency, max_per_second=max_per_second
        )
