"""The one request path every operation takes: build, send, classify, retry, map errors."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import httpx2

from ._errors import (
    APIConnectionError,
    APIResponseTooLargeError,
    APIResponseValidationError,
    APITimeoutError,
    ValidationError,
    error_class_for_status,
    status_error_message,
)
from ._http import MAX_RESPONSE_BYTES, ResponseTooLarge, classify_failure
from ._models import AuthToken, ResponseShapeError
from ._retry import Operation, RetryPolicy, Verdict

if TYPE_CHECKING:
    from ._http import HTTPConnection

__all__ = ["RequestPipeline"]

logger: Final = logging.getLogger("ziggeo_async")

COLLECTION_PATH: Final = "/v1/authtokens/"
_METHOD: Final = {
    Operation.CREATE: "POST",
    Operation.GET: "GET",
    Operation.UPDATE: "POST",
    Operation.DELETE: "DELETE",
}
_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
# How much of an HTTP-stack error message a connection error quotes.
_DETAIL_CHARS: Final = 200
# How many trailing characters of a token id logs and messages show.
_SHOWN_ID_CHARS: Final = 4


def display_path(segment: str | None) -> str:
    """The request path for logs and messages, with the token id cut to its last 4 characters.

    Server auth tokens are bearer credentials for the pages that carry them, so
    they are never written out whole.
    """
    if segment is None:
        return COLLECTION_PATH
    return f"{COLLECTION_PATH}…{segment[-_SHOWN_ID_CHARS:]}"


def credential_texts(authorization: str) -> tuple[str, ...]:
    """What a server could echo back of a Basic ``authorization``: its base64, its password."""
    encoded = authorization.partition(" ")[2]
    try:
        password = base64.b64decode(encoded, validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        password = ""
    return tuple(text for text in (encoded, password) if text)


class RequestPipeline:
    """Sends one operation with the client's credentials, timeout and retry policy."""

    __slots__ = (
        "_base_url",
        "_connection",
        "_credential_texts",
        "_form_headers",
        "_headers",
        "_policy",
        "_timeout",
    )

    def __init__(
        self,
        *,
        base_url: str,
        authorization: str,
        user_agent: str,
        timeout: httpx2.Timeout,
        policy: RetryPolicy,
        connection: Callable[[], HTTPConnection],
    ) -> None:
        self._base_url = base_url.rstrip("/") + COLLECTION_PATH
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._headers = headers
        self._form_headers = {**headers, "Content-Type": _FORM_CONTENT_TYPE}
        self._credential_texts = credential_texts(authorization)
        self._timeout = timeout
        self._policy = policy
        self._connection = connection

    def __repr__(self) -> str:
        return f"<RequestPipeline {self._base_url!r}>"

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    async def send(
        self,
        operation: Operation,
        segment: str | None = None,
        form: str | None = None,
        *,
        timeout: float | None = None,
    ) -> httpx2.Response:
        """Send ``operation`` on the token ``segment`` (already validated and quoted).

        Returns the successful response, or raises the mapped ``APIError`` once the
        retry policy gives up.
        """
        call_timeout = self._timeout if timeout is None else _call_timeout(timeout)
        method = _METHOD[operation]
        path = display_path(segment)
        url = self._base_url if segment is None else self._base_url + segment
        content = None if form is None else form.encode("ascii")
        headers = self._headers if form is None else self._form_headers
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            mapped: APIConnectionError | None = None
            try:
                response = await self._connection().send(
                    method, url, content=content, headers=headers, timeout=call_timeout
                )
            except ResponseTooLarge as error:
                _log_attempt(method, path, "response too large", attempt, started)
                raise APIResponseTooLargeError(
                    f"{method} {path}: {error} ({MAX_RESPONSE_BYTES} bytes at most are read); "
                    "the connection was closed",
                    method=method,
                    path=path,
                ) from None
            except Exception as error:
                classified = classify_failure(error)
                if classified is None:
                    raise
                failure, timed_out = classified
                _log_attempt(method, path, type(error).__name__, attempt, started)
                decision = self._policy.decide(operation, attempt=attempt, failure=failure)
                if decision.verdict is Verdict.FAIL:
                    mapped = self._connection_error(error, timed_out, attempt, method, segment)
            else:
                status = response.status_code
                _log_attempt(method, path, status, attempt, started)
                decision = self._policy.decide(
                    operation,
                    attempt=attempt,
                    status_code=status,
                    retry_after=response.headers.get("retry-after"),
                )
                if decision.verdict is Verdict.SUCCEED:
                    return response
                if decision.verdict is Verdict.FAIL:
                    body = self._body_without_credentials(response)
                    raise error_class_for_status(status)(
                        status_error_message(method, path, status, body),
                        method=method,
                        path=path,
                        status_code=status,
                        body=body,
                        response=response,
                    )
            if mapped is not None:
                # Raised here, outside the except block: the HTTP stack's own exception
                # is neither its cause nor its context, only a cleaned copy of it.
                raise mapped
            await anyio.sleep(decision.delay)

    def _connection_error(
        self,
        error: Exception,
        timed_out: bool,
        attempt: int,
        method: str,
        segment: str | None,
    ) -> APIConnectionError:
        """The SDK's error for a failure of the HTTP stack, with its text cleaned.

        The stack's message can quote the URL (the whole token id) or a header line a
        server echoed (the Authorization header); the error carries only the cleaned
        text, and as its cause a copy of the stack's exception holding that text alone.
        """
        detail = self._clean_detail(str(error), segment)
        error_class = APITimeoutError if timed_out else APIConnectionError
        path = display_path(segment)
        mapped = error_class(
            f"{method} {path} failed after {attempt} attempt(s): {type(error).__name__}"
            + (f": {detail}" if detail else ""),
            method=method,
            path=path,
        )
        try:
            mapped.__cause__ = type(error)(detail)
        except Exception:  # noqa: BLE001 - a class that takes other arguments: no cause
            mapped.__cause__ = None
        mapped.__suppress_context__ = True
        return mapped

    def _clean_detail(self, detail: str, segment: str | None) -> str:
        """An HTTP-stack message without credentials or the whole token id, and short."""
        for text in self._credential_texts:
            detail = detail.replace(text, "[credentials removed]")
        # A segment of 4 characters or fewer is shown whole anyway (display_path).
        if segment and len(segment) > _SHOWN_ID_CHARS:
            for form in {segment, urllib.parse.unquote(segment)}:
                detail = detail.replace(form, "…" + segment[-_SHOWN_ID_CHARS:])
        return " ".join(detail.split())[:_DETAIL_CHARS]

    def _body_without_credentials(self, response: httpx2.Response) -> str:
        """The body as text, with the credentials cut out: a debugging proxy or a
        misconfigured server may echo the request headers into an error page, and the
        body ends up in the exception's message."""
        try:
            body = response.text
        except (UnicodeError, LookupError):  # e.g. "charset=utf-16" on a body with no BOM
            body = response.content.decode("utf-8", errors="replace")
        for text in self._credential_texts:
            body = body.replace(text, "[credentials removed]")
        return body

    async def send_for_token(
        self,
        operation: Operation,
        segment: str | None = None,
        form: str | None = None,
        *,
        timeout: float | None = None,
    ) -> AuthToken:
        """``send``, then the ``AuthToken`` in the response body.

        A body that is not an auth token object raises ``APIResponseValidationError``.
        """
        response = await self.send(operation, segment, form, timeout=timeout)
        try:
            return AuthToken.from_json(json.loads(response.content))
        except (ValueError, RecursionError) as error:  # ResponseShapeError and JSON errors
            reason = str(error) if isinstance(error, ResponseShapeError) else "not valid JSON"
            method, path = _METHOD[operation], display_path(segment)
            raise APIResponseValidationError(
                f"{method} {path} returned {response.status_code} with an unusable body: {reason}",
                method=method,
                path=path,
                status_code=response.status_code,
                body=self._body_without_credentials(response),
            ) from None


def _call_timeout(timeout: object) -> httpx2.Timeout:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValidationError("timeout", f"expected a positive number of seconds, got {timeout!r}")
    return httpx2.Timeout(timeout)


def _log_attempt(method: str, path: str, outcome: int | str, attempt: int, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)",
            method,
            path,
            outcome,
            attempt,
            (time.perf_counter() - started) * 1000,
        )
