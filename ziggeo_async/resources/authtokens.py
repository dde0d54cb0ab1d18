"""``client.authtokens``: the four auth-token endpoints, thin over the request pipeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from .._arguments import GrantsInput, encode_form, normalize_arguments, path_segment
from .._errors import ValidationError
from .._retry import Operation

if TYPE_CHECKING:
    from .._models import AuthToken
    from .._pipeline import RequestPipeline

__all__ = ["AsyncAuthTokens"]


class AsyncAuthTokens:
    """Create, read, change and delete server auth tokens.

    Every method checks its arguments before anything is sent (``ValidationError``),
    retries by the client's policy, and takes ``timeout=`` (seconds) for that call.
    """

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    def __repr__(self) -> str:
        return "<AsyncAuthTokens>"

    async def create(
        self,
        *,
        volatile: bool | None = None,
        hidden: bool | None = None,
        expiration_date: int | datetime | None = None,
        usage_expiration_time: int | timedelta | None = None,
        session_limit: int | None = None,
        grants: GrantsInput | None = None,
        timeout: float | None = None,
        **unknown: NoReturn,
    ) -> AuthToken:
        """Create an auth token and return it as Ziggeo stored it.

        Never retried once it may have reached Ziggeo, so it cannot issue a duplicate.
        """
        form = encode_form(
            normalize_arguments(
                {
                    "volatile": volatile,
                    "hidden": hidden,
                    "expiration_date": expiration_date,
                    "usage_expiration_time": usage_expiration_time,
                    "session_limit": session_limit,
                    "grants": grants,
                    **unknown,
                }
            )
        )
        return await self._pipeline.send_for_token(Operation.CREATE, form=form, timeout=timeout)

    async def get(self, token: str, *, timeout: float | None = None) -> AuthToken:
        """The auth token ``token`` (its token id; keys are not accepted here)."""
        segment = path_segment("token", token)
        return await self._pipeline.send_for_token(Operation.GET, segment, timeout=timeout)

    async def update(
        self,
        token_or_key: str,
        *,
        volatile: bool | None = None,
        hidden: bool | None = None,
        expiration_date: int | datetime | None = None,
        usage_expiration_time: int | timedelta | None = None,
        session_limit: int | None = None,
        grants: GrantsInput | None = None,
        timeout: float | None = None,
        **unknown: NoReturn,
    ) -> AuthToken:
        """Change the given arguments of an auth token; return it as Ziggeo stored it."""
        segment = path_segment("token_or_key", token_or_key)
        normalized = normalize_arguments(
            {
                "volatile": volatile,
                "hidden": hidden,
                "expiration_date": expiration_date,
                "usage_expiration_time": usage_expiration_time,
                "session_limit": session_limit,
                "grants": grants,
                **unknown,
            }
        )
        if not normalized:
            raise ValidationError("arguments", "update needs at least one argument to change")
        return await self._pipeline.send_for_token(
            Operation.UPDATE, segment, encode_form(normalized), timeout=timeout
        )

    async def delete(self, token_or_key: str, *, timeout: float | None = None) -> None:
        """Delete an auth token.

        A 404 after a retried attempt counts as done: the earlier attempt deleted it.
        """
        segment = path_segment("token_or_key", token_or_key)
        await self._pipeline.send(Operation.DELETE, segment, timeout=timeout)

    async def destroy(self, token_or_key: str, *, timeout: float | None = None) -> None:
        """Alias of ``delete``, under the name the Node SDK uses."""
        await self.delete(token_or_key, timeout=timeout)
